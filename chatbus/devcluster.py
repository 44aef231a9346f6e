"""compose.yaml's NATS topology without Docker: a JetStream cluster of embedded nats-servers."""

from __future__ import annotations

import os
from pathlib import Path

from chatbus.devstack import EmbeddedNats, free_port, secret_file


class EmbeddedNatsCluster:
    """`size` JetStream nodes on 127.0.0.1 routed into one cluster (compose.yaml's topology without
    Docker), each with its own store under `root`, all with one generated password. Its `url` lists
    every node, comma-separated, the form CHATBUS_NATS_URL takes."""

    def __init__(self, root: Path, size: int = 3) -> None:
        self.root = Path(root)
        cluster_ports = [free_port() for _ in range(size)]
        self.nodes = [
            EmbeddedNats(
                self.root / f"nats-{i + 1}",
                password_file=secret_file(self.root / "nats"),
                server_name=f"nats-{i + 1}",
                cluster_port=port,
                routes=[p for p in cluster_ports if p != port],
            )
            for i, port in enumerate(cluster_ports)
        ]

    @property
    def url(self) -> str:
        return ",".join(node.url for node in self.nodes)

    def node(self, server_name: str) -> EmbeddedNats:
        return next(n for n in self.nodes if n.server_name == server_name)

    def start(self) -> str:
        self.root.mkdir(parents=True, exist_ok=True)
        os.chmod(self.root, 0o700)
        for node in self.nodes:
            node.start()
        return self.url

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()
