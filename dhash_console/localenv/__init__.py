"""The bundled dhash reference service that the `local` environment runs.

Run it with `python -m dhash_console.localenv serve ...` (see `__main__`). Modules:
`dhash` the hash itself, `db` the database access (schema checked, never created), `app` the
Starlette app and its endpoints, `upload` reading uploads, `injection` fault injection,
`metrics` the Prometheus metrics and access log, `routing` route templates for both,
`traffic` a steady load generator, `faults` the fault spec shared with the config.
"""
