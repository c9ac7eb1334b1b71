"""The `salesforce` source: see source.py (what staging calls), client.py, resource.py (its settings), and the maps."""
