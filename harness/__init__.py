"""What the tests and the benchmarks share: real tocsin workers started as child
processes, watched through their logs and health ports, stopped or killed; Kafka waited
on. Neither tests/ nor benchmarks/ import the other; both import this. Not shipped in
the wheel."""
