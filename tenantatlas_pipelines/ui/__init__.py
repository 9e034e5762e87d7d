"""The inventory web UI (`tenantatlas ui`): read-only pages for the people who run the tenants.

reader (analyst sessions) -> queries (SELECTs, keyset pages) -> portfolio/charts/format (pure) -> app
(routes, templates) behind security (bind, token, headers). docs/ui.md says what each page shows.
"""
