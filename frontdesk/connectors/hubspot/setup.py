"""The custom contact properties ``hubspot.sync`` writes, and a check that they exist.

HubSpot refuses a write that names a property it does not have (400, PROPERTY_DOESNT_EXIST),
so the three properties must be created once per HubSpot account: by a person in Settings ›
Properties, or by :func:`ensure_properties` (needs the ``crm.schemas.contacts.write`` scope).
A doctor check can call :func:`check_properties`, which only reads.

[properties] https://developers.hubspot.com/docs/api/crm/properties: a property needs
``name``, ``label``, ``type``, ``fieldType`` and ``groupName``; ``contactinformation`` is the
default contact group; ``bool`` properties take the options ``true`` and ``false``.
"""

from __future__ import annotations

from typing import Any

from frontdesk.connectors.hubspot.client import HubSpotClient

GROUP = "contactinformation"

# Plan and status are plain text so that a new entitlement name or status word never makes a
# write fail on an unknown option; access is a yes/no checkbox.
PROPERTIES: dict[str, dict[str, Any]] = {
    "frontdesk_plan": {
        "name": "frontdesk_plan", "label": "Frontdesk plan", "type": "string", "fieldType": "text",
        "groupName": GROUP, "formField": False,
        "description": "Active frontdesk entitlements, separated by ';' (empty when none). Set by frontdesk.",
    },
    "frontdesk_access": {
        "name": "frontdesk_access", "label": "Frontdesk access", "type": "bool",
        "fieldType": "booleancheckbox", "groupName": GROUP, "formField": False,
        "description": "Whether the customer currently has access through frontdesk. Set by frontdesk.",
        "options": [
            {"label": "Yes", "value": "true", "displayOrder": 0, "hidden": False},
            {"label": "No", "value": "false", "displayOrder": 1, "hidden": False},
        ],
    },
    "frontdesk_status": {
        "name": "frontdesk_status", "label": "Frontdesk status", "type": "string", "fieldType": "text",
        "groupName": GROUP, "formField": False,
        "description": "active, past_due, canceled or none. Set by frontdesk.",
    },
}


def check_properties(client: HubSpotClient | None = None, *, create: bool = False) -> dict[str, list[str]]:
    """Which of the frontdesk properties exist in HubSpot (one read); with ``create``, create the
    missing ones. Returns ``{"present", "created", "missing", "wrong_type"}`` lists of names;
    ``wrong_type`` names properties that exist with another data type than ours (writes may
    then fail with INVALID_OPTION). Raises ProviderError when HubSpot cannot be asked."""
    own = client is None
    hubspot = client or HubSpotClient.from_settings()
    try:
        existing = {p.get("name"): p for p in hubspot.list_properties()}
        report: dict[str, list[str]] = {"present": [], "created": [], "missing": [], "wrong_type": []}
        for name, definition in PROPERTIES.items():
            found = existing.get(name)
            if found is not None:
                report["present"].append(name)
                if found.get("type") != definition["type"]:
                    report["wrong_type"].append(name)
            elif create:
                hubspot.create_property(definition)  # None: created meanwhile by someone else
                report["created"].append(name)
            else:
                report["missing"].append(name)
        return report
    finally:
        if own:
            hubspot.close()


def ensure_properties(client: HubSpotClient | None = None) -> dict[str, list[str]]:
    """Create whichever frontdesk properties are missing; safe to run any number of times."""
    return check_properties(client, create=True)
