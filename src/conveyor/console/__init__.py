"""The web console: pages over a running environment, rendered on the server, refreshed live by a small script."""
