"""CHATBUS_NATS_URL as a list of cluster nodes: nats-py gets the servers and one set of credentials."""

from __future__ import annotations

from bus.nats_conn import split_servers


def test_shared_credentials_move_out_of_the_urls() -> None:
    # The cluster gossips its nodes as bare host:port; with the credentials left in the URLs nats-py
    # would treat those as three more servers and fail to log in to them.
    servers, creds = split_servers(
        "nats://chatbus:p%40ss@n1:4222, nats://chatbus:p%40ss@n2:4222,nats://chatbus:p%40ss@n3:4222"
    )
    assert servers == ["nats://n1:4222", "nats://n2:4222", "nats://n3:4222"]
    assert creds == {"user": "chatbus", "password": "p@ss"}


def test_token_and_plain_urls() -> None:
    assert split_servers("nats://tok@a:4222,nats://tok@b:4222") == (
        ["nats://a:4222", "nats://b:4222"],
        {"token": "tok"},
    )
    assert split_servers("nats://a:4222") == (["nats://a:4222"], {})


def test_different_credentials_stay_in_their_urls() -> None:
    url = "nats://u1:p1@a:4222,nats://u2:p2@b:4222"
    assert split_servers(url) == (url.split(","), {})
