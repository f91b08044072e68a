"""The embedded local stack: the gateway, the demo models, and `maas dev`."""
