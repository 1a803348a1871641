"""The broker's generated configuration: cluster ids and the KRaft properties."""

from __future__ import annotations

import base64
from pathlib import Path

from app.local.broker import BrokerPaths, new_cluster_id, server_properties


def test_cluster_ids_are_kafka_uuids_that_never_look_like_options() -> None:
    ids = {new_cluster_id() for _ in range(3000)}
    assert len(ids) == 3000
    for cluster_id in ids:
        assert len(cluster_id) == 22
        assert not cluster_id.startswith("-")
        assert len(base64.urlsafe_b64decode(cluster_id + "==")) == 16


def test_single_node_kraft_properties(tmp_path: Path) -> None:
    text = server_properties(BrokerPaths(tmp_path), port=19092, controller_port=19093, partitions=3)
    props = dict(line.split("=", 1) for line in text.splitlines())
    assert props["process.roles"] == "broker,controller"
    assert props["listeners"] == "PLAINTEXT://127.0.0.1:19092,CONTROLLER://127.0.0.1:19093"
    assert props["advertised.listeners"] == "PLAINTEXT://127.0.0.1:19092"
    assert props["controller.quorum.voters"] == "1@127.0.0.1:19093"
    assert props["log.dirs"] == str(tmp_path / "kafka" / "data")
    assert props["offsets.topic.replication.factor"] == "1"
