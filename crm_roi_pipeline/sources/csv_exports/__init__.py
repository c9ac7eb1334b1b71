"""The `csv` source: a folder of exports and spreadsheets, read by DuckDB straight into the connection.

`folder.py` recognises each file and matches its mapping against its header, so a missing column fails
before anything is read; `reading.py` reads every file of one entity in a single SQL pass per file;
`lookups.py` reads the files that only enrich other rows; `misread.py` stops a run on values that mean a
whole file is misread; `source.py` is the `Source` staging calls.
"""

