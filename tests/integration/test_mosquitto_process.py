"""The real mosquitto broker the MQTT tests and benchmarks run against: it carries QoS 1 messages,
keeps its port across a crash and restart, and a kill -9 loses what it only held in memory, which
is the fact the outbox fault tests rely on."""

from __future__ import annotations

import asyncio
import os
import socket
from pathlib import Path

import aiomqtt
import pytest

from hardware_sim import mosquitto as mosquitto_module
from hardware_sim.mosquitto import Mosquitto, MosquittoError, mosquitto_binary


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


async def topics_until_marker(port: int, subscribe: str = "t/#") -> list[str]:
    """Subscribe, publish a marker, return every topic received before the marker came back.

    Retained messages are sent right after the SUBACK, so anything retained arrives before the marker.
    """
    seen: list[str] = []
    async with aiomqtt.Client("127.0.0.1", port) as client:
        await client.subscribe(subscribe, qos=1)
        await client.publish("t/marker", b"m", qos=1)
        async with asyncio.timeout(5):
            async for message in client.messages:
                topic = message.topic.value
                if topic == "t/marker":
                    return seen
                seen.append(topic)
    raise AssertionError("unreachable")


async def publish_retained(port: int, topic: str, payload: bytes) -> None:
    async with aiomqtt.Client("127.0.0.1", port) as client:
        await client.publish(topic, payload, qos=1, retain=True)


async def test_qos1_round_trip_and_a_crash_keeps_the_port_but_loses_retained() -> None:
    async with Mosquitto() as broker:
        port = broker.port
        assert port != 0
        assert broker.url == f"mqtt://127.0.0.1:{port}"
        async with aiomqtt.Client("127.0.0.1", port) as client:
            await client.subscribe("t/#", qos=1)
            await client.publish("t/x", b"1", qos=1)
            async with asyncio.timeout(5):
                message = await anext(aiter(client.messages))
            assert (message.topic.value, message.payload, message.qos) == ("t/x", b"1", 1)

        await publish_retained(port, "t/retained", b"kept in memory only")
        assert await topics_until_marker(port) == ["t/retained"]

        old_pid = broker.pid
        assert old_pid is not None
        await broker.kill9()
        assert broker.pid is None
        assert gone(old_pid)

        await broker.restart()
        assert broker.port == port
        assert broker.pid not in (None, old_pid)
        # persistence false (mosquitto's default): the crash lost the retained message
        assert await topics_until_marker(port) == []


async def test_persistence_keeps_retained_across_a_clean_restart_but_not_a_crash() -> None:
    async with Mosquitto(persistence=True) as broker:
        port = broker.port
        await publish_retained(port, "t/retained", b"saved at shutdown")
        await broker.restart()  # SIGTERM: mosquitto writes its database on the way out
        assert broker.workdir is not None and (broker.workdir / "mosquitto.db").exists()
        assert await topics_until_marker(port) == ["t/retained"]

        await publish_retained(port, "t/later", b"only in memory until the next save")
        await broker.kill9()
        await broker.restart()
        assert broker.port == port
        assert await topics_until_marker(port) == ["t/retained"]


async def test_stop_is_idempotent_and_leaves_nothing_behind() -> None:
    broker = Mosquitto()
    await broker.stop()  # never started: nothing to do
    await broker.start()
    pid, workdir, log_path = broker.pid, broker.workdir, broker.log_path
    assert pid is not None and workdir is not None and log_path is not None
    assert workdir.is_dir() and log_path.exists()
    await broker.stop()
    await broker.stop()
    assert broker.pid is None
    assert gone(pid)
    assert not workdir.exists()


async def test_given_workdir_and_log_path_are_used_and_kept(tmp_path: Path) -> None:
    log_path = tmp_path / "logs" / "broker.log"
    async with Mosquitto(workdir=tmp_path / "broker", log_path=log_path, max_queued_messages=5000) as broker:
        config = (tmp_path / "broker" / "mosquitto.conf").read_text()
        assert f"listener {broker.port} 127.0.0.1\n" in config
        assert "max_queued_messages 5000\n" in config
        assert "persistence false\n" in config
        assert f"log_dest file {log_path}\n" in config
    assert (tmp_path / "broker" / "mosquitto.conf").exists()
    assert log_path.exists()


async def test_missing_mosquitto_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("shutil.which", lambda name: None)
    monkeypatch.setattr(mosquitto_module, "FALLBACK_BINARIES", ("/nonexistent/sbin/mosquitto",))
    with pytest.raises(MosquittoError, match=r"not installed: run `make test`.*apt-get install -y mosquitto"):
        mosquitto_binary()
    broker = Mosquitto()
    with pytest.raises(MosquittoError, match="apt-get install -y mosquitto"):
        await broker.start()
    assert broker.pid is None and broker.workdir is None


async def test_a_bad_binary_path_names_the_path() -> None:
    broker = Mosquitto(binary="/nonexistent/mosquitto")
    with pytest.raises(MosquittoError, match=r"'/nonexistent/mosquitto' is missing or not executable"):
        await broker.start()
    await broker.stop()


async def test_a_broker_that_exits_at_once_is_reported_with_its_exit_code() -> None:
    broker = Mosquitto(binary="/bin/false")
    with pytest.raises(MosquittoError, match="exited with code 1 before listening"):
        await broker.start()
    assert broker.pid is None
    assert broker.workdir is None  # the temporary directory went with the failed start


async def test_a_port_another_process_listens_on_is_refused() -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = int(holder.getsockname()[1])
        broker = Mosquitto(port)
        with pytest.raises(MosquittoError, match=f"port 127.0.0.1:{port} is in use"):
            await broker.start()
        assert broker.pid is None
        await broker.stop()


async def test_a_lost_race_for_the_port_is_not_mistaken_for_a_started_broker(monkeypatch: pytest.MonkeyPatch) -> None:
    """Someone takes the port between the check and mosquitto's bind: a connect alone would succeed."""
    monkeypatch.setattr(mosquitto_module, "port_is_free", lambda host, port: True)
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        taken = int(holder.getsockname()[1])

        broker = Mosquitto(taken)  # a port the caller chose: report it
        with pytest.raises(MosquittoError, match=f"port 127.0.0.1:{taken} is in use"):
            await broker.start()
        await broker.stop()

        picks = iter([taken])
        real_free_port = mosquitto_module.free_port
        monkeypatch.setattr(mosquitto_module, "free_port", lambda host: next(picks, None) or real_free_port(host))
        async with Mosquitto() as broker:  # a port we picked: pick another
            assert broker.port != taken
            assert await topics_until_marker(broker.port) == []


async def test_restart_waits_for_a_briefly_busy_port() -> None:
    async with Mosquitto() as broker:
        port = broker.port
        await broker.kill9()
        holder = socket.socket()
        holder.bind(("127.0.0.1", port))
        holder.listen()
        asyncio.get_running_loop().call_later(0.3, holder.close)
        try:
            await broker.restart()
        finally:
            holder.close()
        assert broker.port == port
        assert await topics_until_marker(port) == []
