"""The broker's generated configuration: cluster ids and the KRaft properties."""

from __future__ import annotations

import base64
from pathlib import Path

from pulse.devstack.broker import BrokerPaths, new_cluster_id, server_properties
from pulse.devstack.tls import SERVICE_ACCOUNTS, secure_material


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


def test_sasl_ssl_listener_properties(tmp_path: Path) -> None:
    paths = BrokerPaths(tmp_path)
    material = secure_material(paths.tls)
    assert set(material.credentials) == set(SERVICE_ACCOUNTS)
    text = server_properties(paths, 19092, 19093, 3, secure=(19094, material))
    props = dict(line.split("=", 1) for line in text.splitlines())
    assert props["listeners"].endswith(",SASL_SSL://127.0.0.1:19094")
    assert props["advertised.listeners"] == "PLAINTEXT://127.0.0.1:19092,SASL_SSL://127.0.0.1:19094"
    assert "SASL_SSL:SASL_SSL" in props["listener.security.protocol.map"]
    jaas = props["listener.name.sasl_ssl.plain.sasl.jaas.config"]
    for key, secret in material.credentials.values():
        assert f'user_{key}="{secret}"' in jaas
    assert props["listener.name.sasl_ssl.ssl.keystore.location"] == str(material.keystore)
    # Generated once and reused: a restart keeps the keys clients were given.
    assert secure_material(paths.tls).credentials == material.credentials
