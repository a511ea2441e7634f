"""HubSpot CRM (API v3): contacts kept in step with frontdesk's plan, status and access.

See docs/crm.md. ``client`` wraps the API, ``sync`` is the ``hubspot.sync`` job handler and
``setup`` checks (and can create) the custom contact properties the sync writes.
"""
