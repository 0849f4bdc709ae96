#!/usr/bin/env python3
"""A minimal sdv-failover application instance (paho-mqtt 1.6 or 2.x).

It does what docs/app_contract.md asks of every app:
  (a) publishes its app heartbeat {"seq":n}, QoS 0, not retained, on
      {prefix}/app/{workload}/{node}/hb every period, from its own work loop (a hung loop must
      stop the heartbeat, or the supervisor cannot see the hang);
  (b) follows the retained QoS 1 promotion on {prefix}/workload/{workload}/promotion: it obeys only
      a well-formed promotion of its workload from a configured supervisor id, naming one of the
      workload's two nodes, at an epoch above the one it holds (the epoch is the fencing token);
  (c) on broker loss keeps its role for at most the app heartbeat timeout, then stands by until it
      has re-read the retained promotion; it never makes itself active;
  (d) with a broker pair (mqtt.pairUrl) keeps a session to each broker: heartbeats go to both,
      promotions are taken from either (the other broker's copy holds the epoch held: a repeat),
      and "broker loss" in (c) means both are lost.

Settings come from the environment (all times in ms):
  SDV_WORKLOAD, SDV_NODE (this instance's node), SDV_PRIMARY_NODE, SDV_STANDBY_NODE   required
  SDV_BROKER_HOST=127.0.0.1  SDV_BROKER_PORT=1883  SDV_TOPIC_PREFIX=sdv
  SDV_BROKER2_HOST, SDV_BROKER2_PORT=1883   the second broker of a pair (mqtt.pairUrl); unset: none
  SDV_ISSUERS=supervisor     (comma-separated: supervisor.id, or both supervisor.pair.ids)
  SDV_HEARTBEAT_PERIOD_MS=33 SDV_APP_TIMEOUT_MS=300   (the workload's appHeartbeat in the config)
  SDV_RECONNECT_PERIOD_MS=100  (at most a third of the app timeout: after a broker blip the
                               supervisor gives every target one timeout, so the heartbeat must be
                               back within it)
  SDV_TLS_CA, SDV_TLS_CERT, SDV_TLS_KEY   (the locked bus: this instance's app:<workload>:<node>)

It prints one line per event: `role=active|standby epoch=N activeNode=NODE why=...`,
`promotion obeyed|repeated|ignored ...` (repeated: the promotion held, again: the pair's second
copy, or a retained one after a reconnect), `broker connected|lost HOST:PORT connected=N` (N:
sessions up).
"""
import json
import os
import sys
import threading
import time

import paho.mqtt.client as mqtt

MAX_EPOCH = 2**31 - 1  # lib/wire/wire.ts
MAX_PROMOTION_BYTES = 4096
SETTLE_S = 0.2  # the broker sends the retained promotion right behind the SUBACK


def env(name, default=None):
    value = os.environ.get(name, default)
    if value is None:
        sys.exit(f"app.py: set {name}")
    return value


WORKLOAD = env("SDV_WORKLOAD")
NODE = env("SDV_NODE")
PRIMARY, STANDBY = env("SDV_PRIMARY_NODE"), env("SDV_STANDBY_NODE")
PREFIX = env("SDV_TOPIC_PREFIX", "sdv")
ISSUERS = {s for s in env("SDV_ISSUERS", "supervisor").split(",") if s}
PERIOD_S = int(env("SDV_HEARTBEAT_PERIOD_MS", "33")) / 1000
TIMEOUT_S = int(env("SDV_APP_TIMEOUT_MS", "300")) / 1000
RECONNECT_S = int(env("SDV_RECONNECT_PERIOD_MS", "100")) / 1000
HB_TOPIC = f"{PREFIX}/app/{WORKLOAD}/{NODE}/hb"
PROMOTION_TOPIC = f"{PREFIX}/workload/{WORKLOAD}/promotion"

BROKERS = [(env("SDV_BROKER_HOST", "127.0.0.1"), int(env("SDV_BROKER_PORT", "1883")))]
if os.environ.get("SDV_BROKER2_HOST"):
    BROKERS.append((os.environ["SDV_BROKER2_HOST"], int(env("SDV_BROKER2_PORT", "1883"))))

lock = threading.Lock()
held = {"epoch": 0, "activeNode": PRIMARY}  # no promotion yet: the primary is active
links = [{"name": f"{h}:{p}", "connected": False, "settled_at": None} for h, p in BROKERS]
trust = {"ever": False, "trusted_until": 0.0}  # over all brokers


def say(line):
    print(line, flush=True)


def check(payload):
    """The verdict on a promotion (the rules of lib/wire/promotion_check.ts): obey, or why not."""
    if len(payload) == 0 or len(payload) > MAX_PROMOTION_BYTES:
        return None, "malformed"  # an empty payload clears a retained promotion
    try:
        p = json.loads(payload)
    except ValueError:
        return None, "malformed"
    if not isinstance(p, dict) or p.get("v") != 1:
        return None, "malformed"
    issuer = p.get("issuer", p.get("supervisor"))  # `supervisor`: releases before the issuer field
    epoch = p.get("epoch")
    if not all(isinstance(p.get(k), str) for k in ("workload", "activeNode")) or \
            not isinstance(issuer, str) or not issuer or \
            type(epoch) is not int or not 1 <= epoch <= MAX_EPOCH:
        return None, "malformed"
    if p["workload"] != WORKLOAD:
        return p, "other-workload"
    if issuer not in ISSUERS:
        return p, "unknown-issuer"
    if p["activeNode"] not in (PRIMARY, STANDBY):
        return p, "foreign-active-node"
    if epoch == held["epoch"] and p["activeNode"] != held["activeNode"]:
        return p, "epoch-reused"
    if epoch <= held["epoch"]:
        return p, "stale"
    return p, None


def on_message(client, link, msg):
    with lock:
        p, refusal = check(msg.payload)
        if refusal == "stale" and p["epoch"] == held["epoch"]:
            # the promotion held, again (the other broker's copy, a retained one): harmless
            say(f"promotion repeated epoch={p['epoch']} activeNode={p['activeNode']}")
        elif refusal is None:
            held["epoch"], held["activeNode"] = p["epoch"], p["activeNode"]
            say(f"promotion obeyed epoch={p['epoch']} activeNode={p['activeNode']} "
                f"issuer={p.get('issuer', p.get('supervisor'))}")
        else:
            say(f"promotion ignored reason={refusal} epoch={p.get('epoch') if p else '-'} "
                f"activeNode={p.get('activeNode') if p else '-'} "
                f"issuer={p.get('issuer', p.get('supervisor')) if p else '-'}")


def connected_count():
    return sum(link["connected"] for link in links)


def on_connect(client, link, flags, rc, *properties):  # paho 1.x and 2.x (VERSION2)
    if rc != 0:
        return
    with lock:
        link["connected"], link["settled_at"], trust["ever"] = True, None, True
        say(f"broker connected {link['name']} connected={connected_count()}")
    client.subscribe(PROMOTION_TOPIC, qos=1)  # clean session: subscribe on every connect


def on_subscribe(client, link, mid, *rest):
    with lock:
        link["settled_at"] = time.monotonic() + SETTLE_S


def on_disconnect(client, link, *rest):
    with lock:
        if not link["connected"]:
            return  # a failed reconnect attempt
        link["connected"], link["settled_at"] = False, None
        if connected_count() == 0:
            # While a broker is up, the supervisor fails this instance over after TIMEOUT_S of
            # silence: past that, this instance cannot know it is still the active one.
            trust["trusted_until"] = time.monotonic() + TIMEOUT_S
        say(f"broker lost {link['name']} connected={connected_count()}")


def current_role(now):
    """active only while the promotion state is known: one broker subscribed and settled, or
    within the grace after the last broker was lost."""
    settled = any(link["connected"] and link["settled_at"] is not None and now >= link["settled_at"]
                  for link in links)
    if not settled and now >= trust["trusted_until"]:
        why = "promotion-unknown" if connected_count() else "broker-lost" if trust["ever"] else \
            "connecting"
        return "standby", why
    if settled:
        trust["trusted_until"] = float("inf")
    return ("active" if held["activeNode"] == NODE else "standby"), "promotion"


def start_session(link, host, port):
    """One session (clean, same client id on each broker) with its own network thread."""
    client_id = f"app:{WORKLOAD}:{NODE}"
    if hasattr(mqtt, "CallbackAPIVersion"):  # paho 2.x
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, userdata=link)
    else:
        client = mqtt.Client(client_id=client_id, clean_session=True, userdata=link)
    if os.environ.get("SDV_TLS_CA"):
        client.tls_set(ca_certs=os.environ["SDV_TLS_CA"], certfile=os.environ.get("SDV_TLS_CERT"),
                       keyfile=os.environ.get("SDV_TLS_KEY"))
    client.on_connect, client.on_subscribe = on_connect, on_subscribe
    client.on_message, client.on_disconnect = on_message, on_disconnect
    client.reconnect_delay_set(min_delay=RECONNECT_S, max_delay=RECONNECT_S)
    client.connect_async(host, port, keepalive=5)
    client.loop_start()  # network thread: receives promotions, reconnects
    return client


def main():
    clients = [start_session(link, *broker) for link, broker in zip(links, BROKERS)]
    seq, last, next_beat = 0, None, time.monotonic()
    while True:  # the app's work loop: do one period of work, then heartbeat
        # ... the application's real work for this period goes here; act on the output only when
        # the role is active (a standby computes, but does not actuate) ...
        now = time.monotonic()
        with lock:
            role, why = current_role(now)
            state = (role, held["epoch"], held["activeNode"])
        if state != last:
            say(f"role={role} epoch={state[1]} activeNode={state[2]} why={why}")
            last = state
        seq += 1
        for client in clients:  # to every broker; dropped by a session that is offline
            client.publish(HB_TOPIC, '{"seq":%d}' % seq, qos=0, retain=False)
        next_beat += PERIOD_S
        time.sleep(max(0.0, next_beat - time.monotonic()))
        if time.monotonic() - next_beat > PERIOD_S:
            next_beat = time.monotonic()  # after a stall: no burst of catch-up heartbeats


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        pass
