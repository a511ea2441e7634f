"""The admin app's screens, one module per subject."""
