"""Local, real stand-ins for the ML services the app drives: Studio (classic), Azure ML (v2), and their shared training core."""
