"""Status pages: per tenant and audience, served by the API worker under /status."""
