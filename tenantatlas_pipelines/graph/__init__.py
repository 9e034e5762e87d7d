"""Microsoft Graph access: settings and clouds, MSAL tokens, retries, paging and error mapping.

Import from the submodules (`graph.settings`, `graph.client`, `graph.errors`); see docs/graph-client.md.
"""
