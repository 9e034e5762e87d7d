"""The inventory web UI (`tenantatlas ui`): read-only pages for the people who run the tenants.

reader (analyst sessions) -> queries / history_queries (SELECTs, keyset pages) -> portfolio, charts,
format (pure) -> inventory_pages, run_pages, history_pages (handlers on views.Views, Jinja2 templates)
-> app (routes) behind security (bind, token, headers). docs/ui.md says what each page shows.
"""
