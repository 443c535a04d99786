"""The operator's dashboard: pages, forms and static files served by the Functions app (shipped in the package)."""
