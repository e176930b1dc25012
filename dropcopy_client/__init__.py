"""dropcopy_client: a CME Globex Drop Copy 4.0 client."""
