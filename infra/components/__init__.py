"""One construct module per service; each construct exposes what the others need as attributes."""
