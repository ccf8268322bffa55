"""`tocsin run expiry`: alerts resolve when their sender stops re-sending them."""
