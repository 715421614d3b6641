"""The cluster scenarios, shared by the CI suite (tests/cluster, N=5) and bench/cluster.py (N=20).

Each function drives a running :class:`~tests.cluster.harness.Cluster`,
waits on what the ToRs show (never on time), and returns a result holding
both the outcome the tests assert (tables equal the plan, samples without a
lost path, no session reset) and the figures the benchmark prints (seconds,
latencies, CPU).
"""
from __future__ import annotations

import random
import statistics
import threading
import time
from dataclasses import dataclass, field
from typing import Iterable

from tests.cluster.harness import Cluster, Node, Svc, cpu_seconds, cpu_split, diff_tables
from tests.cluster.tor import PathTable, Sampler, stale_prefixes
from tests.interop.netlab import holds_for, wait_for


@dataclass
class Result:
    name: str
    figures: dict[str, float] = field(default_factory=dict)  # what the benchmark prints
    losses: list = field(default_factory=list)  # samples that lacked a path that had to stay
    notes: list[str] = field(default_factory=list)
    samples: int = 0


def percentile(values: list[float], q: float) -> float:
    vs = sorted(values)
    if not vs:
        return float("nan")
    k = max(0, min(len(vs) - 1, int(round(q / 100 * (len(vs) - 1)))))
    return vs[k]


def names(c: Cluster, *idx: int) -> tuple[str, ...]:
    return tuple(c.nodes[i].name for i in idx)


def cluster_services(count: int, endpoints: tuple[str, ...], start: int = 0) -> list[Svc]:
    return [Svc(f"svc{i}", i, "Cluster", endpoints) for i in range(start, start + count)]


def local_services(count: int, endpoints: tuple[str, ...], start: int = 0) -> list[Svc]:
    return [Svc(f"loc{i}", i, "Local", endpoints) for i in range(start, start + count)]


def converge(c: Cluster, services: list[Svc], timeout: float = 120, what: str = "") -> tuple[dict, dict, float]:
    """Publish ``services`` and wait for both ToRs to equal the plan: (addresses, plan, seconds)."""
    t0 = time.monotonic()
    addrs = c.publish(services)
    plan = c.plan(services, addrs)
    done = c.wait_tables(plan, timeout, what or f"{len(services)} Services on both ToRs")
    # a session that flapped meanwhile is back before a scenario starts measuring
    c.wait_sessions()
    c.wait_bfd()
    c.wait_tables(plan, timeout, what or f"{len(services)} Services on both ToRs")
    return addrs, plan, done - t0


def probes(plan: dict[str, PathTable], k: int = 8) -> list[str]:
    """``k`` prefixes spread over the plan: read every few ms to time a change, where a whole table
    of 200 prefixes x 20 paths takes bgpd a few hundred ms to print."""
    prefixes = sorted(next(iter(plan.values()), {}))
    return prefixes[:: max(1, len(prefixes) // k)][:k]


def restrict(plan: dict[str, PathTable], prefixes: Iterable[str]) -> dict[str, PathTable]:
    keep = set(prefixes)
    return {tor: {p: h for p, h in table.items() if p in keep} for tor, table in plan.items()}


def first_match(sampler: Sampler, tor: str, after: float, want: PathTable) -> float | None:
    """The time of ``tor``'s first sample after ``after`` equal to ``want``."""
    return next((s.t for s in list(sampler.samples) if s.tor == tor and s.t > after and s.table == want), None)


def unchanged_by(plan: dict[str, PathTable], victim: Node | None, c: Cluster) -> dict[str, PathTable]:
    """``plan`` without the paths through ``victim`` (the paths a fault of ``victim`` must not touch)."""
    if victim is None:
        return plan
    out = {}
    for tor, table in plan.items():
        gone = victim.fabric[tor]
        out[tor] = {p: hops - {gone} for p, hops in table.items() if hops - {gone}}
    return out


# ---------------------------------------------------------------- 1: many Services at once

def services_at_once(c: Cluster, count: int = 200) -> Result:
    r = Result("services_at_once")
    c.publish([])
    c.wait_tables({t.name: {} for t in c.tors}, 60, "empty tables before the burst")
    svcs = cluster_services(count, names(c, 0, 1))
    before = c.session_counters()

    def all_received() -> bool:  # a small answer, read every few ms; the tables are checked after
        return all(all(tor.received().get(nd.fabric[tor.name], 0) >= count for nd in c.nodes) for tor in c.tors)
    # watched from the first create on, in its own thread: in kube mode publish() returns only once the
    # controller has written every address, by when the paths may all be there
    done = threading.Event()
    seen: list[float] = []

    def watch() -> None:
        while not done.is_set():
            try:
                if all_received():
                    seen.append(time.monotonic())
                    return
            except Exception:  # noqa: BLE001 - a ToR busy answering; read again
                pass
            done.wait(0.01)
    poller = threading.Thread(target=watch, daemon=True)
    t_sent = time.monotonic()
    poller.start()
    try:
        addrs = c.publish(svcs)  # kube mode: returns once the controller wrote every address
        t_last_create = c.last_write
        plan = c.plan(svcs, addrs)
        poller.join(180)
    finally:
        done.set()
    if not seen:
        raise AssertionError(f"{count} prefixes from every node on both ToRs: not within 180 s")
    t_done = seen[0]
    c.wait_tables(plan, 60, f"{count} Cluster Services with {c.n} paths each")
    c.wait_fib(plan)
    probe = [addrs[s.name] for s in svcs[:: max(1, count // 10)]]
    c.bind_addresses(probe)
    r.figures["client_reached"] = float(sum(c.client_reaches(a) for a in probe))
    r.figures["client_probes"] = float(len(probe))
    r.figures.update(last_create_to_last_path_s=t_done - t_last_create, first_create_to_last_path_s=t_done - t_sent,
                     create_s=t_last_create - t_sent)
    r.figures["paths_per_prefix_min"] = min(len(h) for t in plan.values() for h in t.values())
    r.figures["session_resets"] = float(resets(before, c.session_counters()))
    return r


def resets(before: dict, after: dict) -> int:
    """Sessions the ToRs dropped between two :meth:`Cluster.session_counters` readings."""
    return sum(drop - before[t].get(a, (0, 0))[1] for t in after for a, (_, drop) in after[t].items())


# ---------------------------------------------------------------- 2: Local policy follows endpoints

def local_moves(c: Cluster, count: int = 20, moves: int = 20) -> Result:
    """Local Services with endpoints on 3 nodes; one endpoint at a time moved to a 4th node and back."""
    r = Result("local_moves")
    three = names(c, 0, 1, 2)
    svcs = local_services(count, three)
    addrs, plan, _ = converge(c, svcs, what="Local Services on exactly their endpoints' nodes")
    stable = c.plan([s.moved(three[:2]) for s in svcs], addrs)  # paths via the first two never move
    latencies = []
    current = {s.name: s for s in svcs}
    with Sampler(c.tors, 0.05) as sampler:
        for k in range(moves):
            s = current[svcs[k % count].name]
            target = (three[0], three[1], c.nodes[3].name) if s.nodes[2] == three[2] else three
            moved = s.moved(target)
            current[s.name] = moved
            pfx = f"{addrs[s.name]}/32"
            want = {tor.name: c.expected([pfx], {pfx: target})[tor.name].get(pfx) for tor in c.tors}
            c.publish(list(current.values()))
            t_sent = c.last_write  # the EndpointSlice write (file mode: the file and the SIGHUPs)

            def moved_everywhere() -> bool:
                return all(tor.bgp_paths([pfx]).get(pfx) == want[tor.name] for tor in c.tors)
            wait_for(moved_everywhere, 30, f"{pfx} following its endpoint to {target}", interval=0.01)
            latencies.append(time.monotonic() - t_sent)
        final = c.plan(list(current.values()), addrs)
        c.wait_tables(final, 30, "every Local Service on its endpoints' nodes after the moves")
    r.losses = sampler.losses(stable)
    r.samples = len(sampler.samples)
    r.notes += sampler.errors[:3]
    r.figures.update(move_p50_ms=1000 * percentile(latencies, 50), move_p99_ms=1000 * percentile(latencies, 99),
                     moves=len(latencies))
    return r


# ---------------------------------------------------------------- 3: a node fails

def node_failure(c: Cluster, how: str, victim_index: int = 2, services: int = 50) -> Result:
    """``how``: "cut" (nftables drops everything between the node and both ToRs) or "kill" (SIGKILL)."""
    r = Result(f"node_failure_{how}")
    victim = c.nodes[victim_index]
    svcs = cluster_services(services, names(c, 0, 1))
    addrs, plan, _ = converge(c, svcs)
    others = [nd for nd in c.nodes if nd is not victim]
    after = c.plan(svcs, addrs, up=others)
    keep = unchanged_by(plan, victim, c)
    if how == "cut":
        return _link_cut(c, r, victim, plan, after, keep)
    with Sampler(c.tors, 0.5) as sampler:
        sampler.wait_samples(2)
        victim.proc.kill()
        # graceful restart: the kernel's FIN after SIGKILL puts FRR in helper mode (paths kept stale)
        wait_for(lambda: all(victim.fabric[t.name] not in t.established() for t in c.tors), 30,
                 "both ToRs to see the killed speakerd's sessions close")
        prefixes = set(plan[c.tors[0].name])
        wait_for(lambda: all(prefixes <= stale_prefixes(t) for t in c.tors), 30,
                 "both ToRs to keep the killed node's paths as stale")
        r.notes.append("paths kept as stale (graceful restart helper)")
        sampler.wait_samples(2)
    r.losses = sampler.losses(keep)
    r.samples = len(sampler.samples)
    r.notes += sampler.errors[:3]
    r.figures["kept_table_equal"] = float(c.tables() == plan)
    return r


def _link_cut(c: Cluster, r: Result, victim: Node, plan: dict, after: dict, keep: dict) -> Result:
    """The cut, timed from the ToRs: one probe prefix (it holds every node's path, so it also shows
    any other session's paths going) read back to back, from before the cut until both ToRs lack
    the node's paths (one prefix: at N=20 each read prints 20 paths, and every read is bgpd time). Nothing else reads bgpd meanwhile: printing the whole table (200 prefixes x N paths)
    holds bgpd's thread for tens to hundreds of ms, and a BFD Down that arrives then waits for it, so
    a whole-table read in the window would delay what is being timed. The whole table is sampled
    before the cut and after the removal, and compared with the plan at the end."""
    probe = probes(plan, 1)
    want = restrict(after, probe)
    cut = c.prepare_cut(victim)
    try:
        with Sampler(c.tors, 0.5) as table_before:
            table_before.wait_samples(2)
        with Sampler(c.tors, 0.005, prefixes=probe) as fast:
            fast.wait_samples(2)
            cut.fire()

            def removed() -> bool:
                return all(first_match(fast, tor.name, cut.sent, want[tor.name]) is not None for tor in c.tors)
            wait_for(removed, 30, f"{victim.name}'s paths gone from the probe prefixes on both ToRs", interval=0.01)
            fast.wait_samples(2)
    finally:
        cut.cancel()
    with Sampler(c.tors, 0.5) as table_after:
        c.wait_tables(after, 30, f"{victim.name}'s paths gone from both ToRs")
        table_after.wait_samples(2)
    # from the moment the rules were handed to nft (they are in force by the time it exits,
    # nft_s later): when each ToR's first sample lacked the node's paths
    times = [first_match(fast, tor.name, cut.sent, want[tor.name]) for tor in c.tors]
    for tor, t in zip(c.tors, times):
        if t is not None:
            r.figures[f"removal_s_{tor.name}"] = t - cut.sent
    if all(t is not None for t in times):
        r.figures["removal_s"] = max(times) - cut.sent
    r.figures["nft_s"] = cut.done - cut.sent
    r.figures["probe_read_ms"] = 1000 * fast.mean_interval()
    r.losses = (table_before.losses(plan) + table_after.losses(keep) + fast.losses(restrict(keep, probe)))
    r.samples = len(table_before.samples) + len(table_after.samples) + len(fast.samples)
    r.notes += table_before.errors[:3] + table_after.errors[:3] + fast.errors[:3]
    r.figures["kept_table_equal"] = float(c.tables() == after)
    return r


# ---------------------------------------------------------------- 4: graceful restart

def graceful_restart(c: Cluster, victim_index: int = 1, services: int = 50, how: str = "sigterm") -> Result:
    r = Result(f"graceful_restart_{how}")
    victim = c.nodes[victim_index]
    svcs = cluster_services(services, names(c, 0, 1))
    addrs, plan, _ = converge(c, svcs)
    before = c.session_counters()
    probe = probes(plan, 2)
    fast = Sampler(c.tors, 0.05, prefixes=probe)  # every 50 ms
    with Sampler(c.tors, 0.25) as sampler, fast:  # and the whole table every 250 ms
        sampler.wait_samples(2)
        fast.wait_samples(2)
        t0 = time.monotonic()
        if how == "sigterm":
            rc = victim.proc.stop(timeout=10)
            if rc != 0:
                r.notes.append(f"speakerd exit code {rc} on SIGTERM")
        else:
            victim.proc.kill()
        wait_for(lambda: all(victim.fabric[t.name] not in t.established() for t in c.tors), 30,
                 "both ToRs to see the session close")
        prefixes = set(plan[c.tors[0].name])
        wait_for(lambda: all(prefixes <= stale_prefixes(t) for t in c.tors), 30, "paths kept as stale")
        c.start_speaker(victim)
        c.wait_sessions([victim])
        wait_for(lambda: not any(stale_prefixes(t) for t in c.tors), 60, "stale marks cleared (End-of-RIB)")
        t_done = c.wait_tables(plan, 30, "the plan again after the restart")
        sampler.wait_samples(2)
    r.losses = sampler.losses(plan) + fast.losses(restrict(plan, probe))
    r.samples = len(sampler.samples) + len(fast.samples)
    r.notes += sampler.errors[:3] + fast.errors[:3]
    r.figures.update(restart_to_clean_s=t_done - t0, probe_samples=len(fast.samples),
                     probe_interval_ms=1000 * fast.mean_interval(), table_samples=len(sampler.samples),
                     table_interval_ms=1000 * sampler.mean_interval())
    after = c.session_counters()
    r.figures["other_sessions_reset"] = float(sum(
        1 for tor in after for addr, (est, _) in after[tor].items()
        if addr != victim.fabric[tor] and est != before[tor].get(addr, (est, 0))[0]))
    return r


# ---------------------------------------------------------------- 5: controller leader killed

def leader_index(c: Cluster) -> int | None:
    """Which running controller replica holds the Lease (each runs with ``--identity controller-<i>``)."""
    for lease in c.api.list("Lease"):
        holder = str((lease.get("spec") or {}).get("holderIdentity") or "")
        for i, p in enumerate(c.controllers):
            if p.alive and holder == f"controller-{i}":
                return i
    return None


def controller_failover(c: Cluster, services: int = 20) -> Result:
    r = Result("controller_failover")
    svcs = cluster_services(services, names(c, 0, 1))
    addrs, plan, _ = converge(c, svcs)
    leader = wait_for(lambda: leader_index(c) is not None and leader_index(c) + 1, 60, "a controller leader") - 1
    with Sampler(c.tors, 0.05) as sampler:
        sampler.wait_samples(2)
        t0 = time.monotonic()
        c.controllers[leader].kill()
        new = wait_for(lambda: (i := leader_index(c)) is not None and i != leader and i + 1, 60,
                       "the other controller taking the Lease") - 1
        r.figures["takeover_s"] = time.monotonic() - t0
        # the new leader assigns: one more Service gets an address, the others keep theirs
        extra = Svc(f"svc{services}", services, "Cluster", names(c, 0, 1))
        addrs2, plan2, _ = converge(c, [*svcs, extra], what="a Service created after the takeover")
        sampler.wait_samples(2)
    r.losses = sampler.losses(plan)
    r.samples = len(sampler.samples)
    r.notes.append(f"leader controller-{leader} killed, controller-{new} took over")
    r.figures["addresses_changed"] = float(sum(1 for s in svcs if addrs2[s.name] != addrs[s.name]))
    return r


# ---------------------------------------------------------------- 6: API server outage

def api_outage(c: Cluster, seconds: float, empty: bool, services: int = 30) -> Result:
    """Emulator stopped for ``seconds``; started with its saved objects, or empty and re-populated.

    Re-populated as a restore does it: the objects are created again (new uids and resourceVersions)
    before the server serves the cluster again (connections from the nodes are refused meanwhile),
    so what the speakers list when they reconnect is the whole, equal state.
    """
    r = Result(f"api_outage_{'empty' if empty else 'same'}")
    svcs = [*cluster_services(services - 5, names(c, 0, 1)), *local_services(5, names(c, 0, 1, 2))]
    addrs, plan, _ = converge(c, svcs)
    before = c.session_counters()
    with Sampler(c.tors, 0.05) as sampler:
        sampler.wait_samples(2)
        c.stop_api()
        r.figures["tables_held_during_outage"] = float(holds_for(lambda: c.tables() == plan, seconds, 0.5))
        t0 = time.monotonic()
        if empty:
            c.block_api()
            c.start_api(empty=True, rv_start=10_000_000)
            repopulate(c, svcs, addrs)
            c.unblock_api()
        else:
            c.start_api()
        c.wait_tables(plan, 60, "the plan after the API server is back")
        # the speakers re-listed: still nothing changes
        last: list = [None]

        def same() -> bool:
            last[0] = c.tables()
            return last[0] == plan
        held = holds_for(same, 5, 0.25)
        r.figures["tables_held_after_restart"] = float(held)
        if not held:
            r.notes.append("after the restart: " + diff_tables(plan, last[0]))
        r.figures["back_to_plan_s"] = time.monotonic() - t0
    r.losses = sampler.losses(plan)
    r.samples = len(sampler.samples)
    after = c.session_counters()
    r.figures["session_resets"] = float(sum(after[t][a][1] - before[t].get(a, (0, 0))[1] for t in after for a in after[t]))
    return r


def repopulate(c: Cluster, svcs: Iterable[Svc], addrs: dict[str, str]) -> None:
    """Create everything again in an empty API server (new uids and resourceVersions), same addresses."""
    from tests.cluster import objects
    for obj in [*c.base_objects(), *(objects.node_object(nd.name) for nd in c.nodes)]:
        c.api.apply(obj)
    for s in svcs:
        svc = s.service(addrs[s.name])  # requests its address: the controller gives it the same one
        c.api.create(svc)
        c.api.set_status(svc)
        c.api.create(s.slice())


# ---------------------------------------------------------------- 7: churn

def churn(c: Cluster, seconds: float, rate: float = 50.0, seed: int = 7, base: int = 100) -> Result:
    """``rate`` Service changes per second (create, delete, endpoint move) for ``seconds``."""
    r = Result("churn")
    rng = random.Random(seed)
    all_nodes = [nd.name for nd in c.nodes]
    svcs: dict[str, Svc] = {}
    for i in range(base):
        s = (Svc(f"ch{i}", i, "Local", tuple(rng.sample(all_nodes, 2))) if i % 4 == 0
             else Svc(f"ch{i}", i, "Cluster", tuple(rng.sample(all_nodes, 2))))
        svcs[s.name] = s
    converge(c, list(svcs.values()))
    # what a speakerd spends with nothing changing (BFD every 100 ms, keepalives, bookmarks): the
    # churn's own cost is the rest
    idle_s = min(5.0, seconds / 4)
    cpu_idle0, t_idle0 = {nd.name: cpu_seconds(nd.proc.pid) for nd in c.nodes}, time.monotonic()
    time.sleep(idle_s)  # a measuring window, not synchronisation
    idle_wall = time.monotonic() - t_idle0
    cpu_idle = statistics.mean(100 * (cpu_seconds(nd.proc.pid) - cpu_idle0[nd.name]) / idle_wall for nd in c.nodes)
    before = c.session_counters()
    cpu0 = {nd.name: cpu_seconds(nd.proc.pid) for nd in c.nodes}
    split0 = [cpu_split(nd.proc.pid) for nd in c.nodes]
    api_cpu0, api_req0 = cpu_seconds(c.api_proc.pid), _api_requests(c)
    t0 = time.monotonic()
    next_index, changes, pending = base, 0, []
    api = c.api
    inflight: dict[str, list] = {}  # name -> its requests not answered yet

    def settled() -> list[str]:
        """Services whose earlier requests are all answered: the ones a delete or a move may pick
        (with many requests in flight, a delete could otherwise overtake the create it follows)."""
        for name in [n for n, fs in inflight.items() if all(f.done() for f in fs)]:
            del inflight[name]
        return [n for n in svcs if n not in inflight]

    def send(name: str, *futures) -> None:
        inflight.setdefault(name, []).extend(futures)
        pending.extend(futures)
    while (now := time.monotonic()) - t0 < seconds:
        due = int((now - t0) * rate)
        while changes < due:
            kind = rng.random()
            ready = settled() if kind >= 0.3 else []
            if kind < 0.3 or len(svcs) < base // 2 or not ready:
                s = Svc(f"ch{next_index}", next_index, rng.choice(("Cluster", "Local")), tuple(rng.sample(all_nodes, 2)))
                next_index += 1
                svcs[s.name] = s
                send(s.name, api.submit("POST", api.path("Service", "default"), _body(s.service(None))),
                     api.submit("POST", api.path("EndpointSlice", "default"), _body(s.slice())))
            elif kind < 0.5:
                name = rng.choice(ready)
                del svcs[name]
                send(name, api.submit("DELETE", api.path("Service", "default", name)),
                     api.submit("DELETE", api.path("EndpointSlice", "default", f"{name}-ep")))
            else:
                name = rng.choice(ready)
                s = svcs[name].moved(rng.sample(all_nodes, 2))
                svcs[name] = s
                send(name, api.submit("PATCH", api.path("EndpointSlice", "default", f"{name}-ep"),
                                      {"endpoints": s.slice()["endpoints"]}, "application/merge-patch+json"))
            changes += 1
        time.sleep(0.005)  # pacing the load generator, not synchronisation
    failed = [f.exception() for f in pending if f.exception() is not None]
    # the window is until the last change was answered: a slow API server delivers the changes later
    # than they were offered, and changes_per_s says what rate the speakers were actually fed
    wall = time.monotonic() - t0
    cpu1 = {nd.name: cpu_seconds(nd.proc.pid) for nd in c.nodes}
    split1 = [cpu_split(nd.proc.pid) for nd in c.nodes]
    api_cpu, api_req = cpu_seconds(c.api_proc.pid) - api_cpu0, _api_requests(c) - api_req0
    c.published = dict(svcs)
    addrs = c.addresses(svcs.values())
    plan = c.plan(list(svcs.values()), addrs)
    t_end = time.monotonic()
    c.wait_tables(plan, 120, "both ToRs equal to the plan after the churn")
    after = c.session_counters()
    cpu = {n: 100 * (cpu1[n] - cpu0[n]) / wall for n in cpu0}
    r.figures.update(changes=changes, changes_per_s=changes / wall, offered_s=seconds, delivered_s=wall,
                     cpu_ms_per_change=1000 * statistics.mean(cpu1[n] - cpu0[n] for n in cpu0) / max(1, changes),
                     settle_s=time.monotonic() - t_end,
                     cpu_pct_mean=statistics.mean(cpu.values()), cpu_pct_max=max(cpu.values()),
                     cpu_pct_idle=cpu_idle,
                     cpu_pct_user_mean=statistics.mean(100 * (b[0] - a[0]) / wall for a, b in zip(split0, split1)),
                     cpu_pct_system_mean=statistics.mean(100 * (b[1] - a[1]) / wall for a, b in zip(split0, split1)),
                     api_errors=len(failed),
                     # what the API server did meanwhile (every client: the churn, speakers' status
                     # objects and Events, controllers): a saturated one delivers less than offered
                     api_cpu_pct=100 * api_cpu / wall, api_requests_per_change=api_req / max(1, changes),
                     session_resets=float(sum(after[t][a][1] - before[t].get(a, (0, 0))[1]
                                              for t in after for a in after[t])))
    r.figures.update({f"cpu_pct_{n}": v for n, v in cpu.items()})
    r.notes += [str(e) for e in failed[:3]]
    return r


def _api_requests(c: Cluster) -> int:
    """Requests the API emulator has answered so far (its control endpoint's counters)."""
    return sum(c.api.request("GET", "/_emulator/stats")["requests"].values())


def _body(obj: dict) -> dict:
    body = {**obj, "metadata": {k: v for k, v in obj["metadata"].items()
                                if k not in ("resourceVersion", "uid", "creationTimestamp", "generation")}}
    body.pop("status", None)
    return body


__all__ = ["Result", "services_at_once", "local_moves", "node_failure", "graceful_restart",
           "controller_failover", "api_outage", "churn", "percentile"]
