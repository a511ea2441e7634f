"""The JSON API under /api/v1/: the same data and actions as the admin screens, for scripts
and other tools, with bearer tokens (`frontdesk tokens create --role R`). See docs/api.md."""
