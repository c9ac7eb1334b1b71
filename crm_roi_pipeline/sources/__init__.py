"""Sources turn a CRM, or a folder of exports, into canonical fields (see `fields.py`) in a temporary table.

One folder per source: `csv_exports/`, `salesforce/`, `hubspot/`, each with everything of that source (its
client, its maps, its Dagster resource and the variables it reads). `base.py` names what staging calls on
every source; `registry.py` lists them. The modules here at the top are what the sources share: the
canonical fields, mapping files, reading CSV text with DuckDB and typing it into a raw view.
"""
