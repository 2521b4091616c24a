"""Host-side network plumbing: published ports, user-mode endpoints (DESIGN.md,
"Networking"). Knows nothing of HTTP."""
