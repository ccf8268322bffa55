"""The runtime every worker shares.

- `worker`: the protocol a worker implements (process a batch, load and drop state per
  partition) and the `Outputs` it writes through;
- `exactly_once`: consume, process, produce and commit in one Kafka transaction
  (`transactions`: the transactional producer with a deadline on every call);
- `at_least_once`: produce, wait until Kafka acknowledged it, then commit;
- `commits`: the acknowledged flush and the retried commit of the at-least-once loop;
- `records`: a batch split into runs of one partition, fetch errors taken out;
- `produce`: produce without dropping when the local queue is full;
- `deadletters`: the one way a record becomes a dead letter;
- `bootstrap`: the health server, signals and graceful stop of every worker process.
"""
