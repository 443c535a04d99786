"""A local, real stand-in for Azure ML Studio (classic) web services: BES, RRS, endpoint management, ARM."""
