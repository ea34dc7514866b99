"""Golden STIR/SHAKEN vectors for the origination tests, and the test-only PKI that generates them."""
