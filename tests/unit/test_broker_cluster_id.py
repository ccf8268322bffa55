"""The local broker's KRaft cluster id must be one the storage tool accepts."""

import base64

from streams.broker.local import new_cluster_id


def test_cluster_ids_never_look_like_an_option() -> None:
    # 1 in 64 base64url ids starts with '-', which kafka-storage parses as a flag
    # ("--cluster-id: expected one argument"); 2,000 draws of the old generator
    # would all have passed with a chance of about 1e-14.
    ids = {new_cluster_id() for _ in range(2000)}
    assert len(ids) == 2000
    for cluster_id in ids:
        assert not cluster_id.startswith("-")
        assert len(base64.urlsafe_b64decode(cluster_id + "==")) == 16
