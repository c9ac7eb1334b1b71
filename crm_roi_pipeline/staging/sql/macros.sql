-- Parsing rules shared by every source, as macros of the connection (TEMP: they live with it).

-- Booleans as exports write them: true/false, TRUE/FALSE, 1/0, yes/no. NULL when unreadable.
CREATE OR REPLACE TEMP MACRO crm_bool(x) AS
    CASE
        WHEN x IS NULL THEN NULL
        WHEN lower(x) IN ('true', 't', '1', 'yes', 'y') THEN TRUE
        WHEN lower(x) IN ('false', 'f', '0', 'no', 'n') THEN FALSE
    END;

-- Numbers; "1,234.50" thousands groups and a leading currency sign are accepted, a decimal comma is not
-- (it would silently multiply by 100). DuckDB's cast also reads things no spreadsheet means as a number:
-- NaN, inf and Infinity, 1e309 (read as inf), and digits grouped by underscores as in code ("1_000"). Those
-- are NULL here, so they are rejected as unreadable with the value quoted, instead of turning a sum into NaN.
CREATE OR REPLACE TEMP MACRO crm_finite(v) AS CASE WHEN isfinite(v) THEN v END;
CREATE OR REPLACE TEMP MACRO crm_number(x) AS
    crm_finite(TRY_CAST(
        CASE WHEN contains(x, '_') THEN NULL
             WHEN regexp_full_match(x, '[$€£]?\s*-?\d{1,3}(,\d{3})+(\.\d+)?')
             THEN replace(x, ',', '') ELSE x END
        .regexp_replace('^[$€£]\s*', '')
        AS DOUBLE));

-- A value as a file wrote it: surrounding spaces (any Unicode space, as trim removes) dropped, empty as NULL.
-- trim is only called where it can change something: a value that is empty, starts or ends with a space,
-- or holds a non-ASCII character. Every value of every file passes here, so this makes a difference.
CREATE OR REPLACE TEMP MACRO crm_text(x) AS
    CASE WHEN x = '' OR x LIKE ' %' OR x LIKE '% ' OR strlen(x) <> length(x) THEN nullif(trim(x), '') ELSE x END;

-- ISO 8601 dates and datetimes, with or without offset; the result is UTC without a zone.
-- Only values that start like ISO (YYYY-MM-DD): DuckDB would read '02/03/24' as the year 2.
-- A value in UTC written the way APIs and most exports write it (YYYY-MM-DDThh:mm:ss[.fff]Z) is read as a
-- plain TIMESTAMP, a third of the cost of the time-zone conversion every other shape goes through.
CREATE OR REPLACE TEMP MACRO crm_iso_ts(x) AS
    CASE
        WHEN x LIKE '____-__-__T__:__:__Z' OR x LIKE '____-__-__T__:__:__.___Z' THEN TRY_CAST(x AS TIMESTAMP)
        WHEN regexp_matches(x, '^\d{4}-\d') THEN TRY_CAST(x AS TIMESTAMPTZ) AT TIME ZONE 'UTC'
    END;

-- An account name as a matching key: case-folded, punctuation and trailing legal suffixes removed.
CREATE OR REPLACE TEMP MACRO crm_account_key(x) AS
    nullif(
        trim(regexp_replace(
            regexp_replace(
                regexp_replace(lower(x), '[^[:alnum:]]+', ' ', 'g'),
                '(\s+(inc|incorporated|llc|l l c|ltd|limited|corp|corporation|co|company|gmbh|ag|sa|s a|plc|bv|nv|srl|sarl|spa|pty|oy|ab|as|kg|lp|llp))+\s*$', ''),
            '\s+', ' ', 'g')),
        '');

-- Activity types as CRMs name them, lower-cased -> call | email | meeting | task | note | other.
-- Substring tests rather than regular expressions: this runs on every activity, millions of rows.
CREATE OR REPLACE TEMP MACRO crm_activity_type_lower(l) AS
    CASE
        WHEN l IS NULL THEN 'other'
        WHEN contains(l, 'email') OR contains(l, 'e-mail') THEN 'email'
        WHEN contains(l, 'call') OR contains(l, 'phone') THEN 'call'
        WHEN contains(l, 'meeting') OR contains(l, 'event') OR contains(l, 'demo') OR contains(l, 'visit') THEN 'meeting'
        WHEN contains(l, 'note') THEN 'note'
        WHEN contains(l, 'task') OR contains(l, 'todo') OR contains(l, 'to-do') OR contains(l, 'follow') THEN 'task'
        ELSE 'other'
    END;

-- Activity statuses that mean "not done yet"; anything else, and no status at all, is completed.
CREATE OR REPLACE TEMP MACRO crm_activity_open(x) AS
    lower(replace(x, '_', ' ')) IN ('open', 'not started', 'in progress', 'waiting', 'waiting on someone else',
                                    'deferred', 'scheduled', 'planned', 'pending', 'todo', 'to do');
