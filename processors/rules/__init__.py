"""Window rules: pure evaluation of rule files over metric and log streams.

The engine lives in `processors.rules.engine`; this package does not import it, so
that what needs only the label matchers (the incident core, the agents worker) does
not load the anomaly detectors and with them river and scipy (2.4 s at start-up).
"""
