"""Every tuning constant the agent runs with, in one frozen value passed in (default ``Timing()``).

The core reads the pacing (progress lines, lingers, rounds, retries, the coordinator's
look-around); the shell reads the deadlines of its network awaits. A test that needs another
pace passes a ``Timing`` of its own instead of patching a module, and the in-memory cluster runs
the shipped cores with the same value, so no constant is copied.
"""

from __future__ import annotations

from agent.core.backoff import Backoff
from agent.values import field, value

__all__ = ["DEFAULT_TIMING", "Timing"]


@value(kw_only=True)
class Timing:
    """Seconds, unless a name says otherwise."""

    # --- the core -------------------------------------------------------------------------------
    #: a progress line (who is missing, and why) this often while waiting
    progress_every: float = 5.0
    #: an aborted pod keeps answering this long, so peers that have not met the disagreeing pod
    #: learn of it from its hello instead of waiting for their own timeout
    abort_linger: float = 3.0
    #: a coordinator stays at most this long after its verdict for its members' acks
    ack_linger: float = 10.0
    #: a coordinator with everyone reached first looks around this long after; each later look
    #: twice as long after the one before, up to ``look_around_cap`` (``agent.core.lookaround``)
    look_around: float = 1.0
    look_around_cap: float = 16.0
    #: a coordinator waiting with everyone reached asks its own name at its looks at most this
    #: many times in one wait (``agent.core.ownname``): every 16 s, a wait of minutes for late
    #: members cost more queries than its targets
    own_checks: int = 2
    #: a DNS round a push brings forward comes this long after the last, after a quiet while
    round_min_gap: float = 0.1
    #: this long without a push from an unlisted address makes pushes urgent again
    round_quiet: float = 3.0
    #: rounds after cut-short answers wait 1 s, then twice as long after each, up to this
    #: (``agent.core.rounds``): the peers such an answer leaves out are learnt otherwise, each
    #: cut answer lists the same first addresses, and cluster DNS may serve it from a cache 30 s
    #: old anyway (kubeadm's Corefile); at 8 s the Service was two thirds of a 128-pod Job's
    #: queries (12.6 of 18.2 a pod), and at 30 s a pod that waited minutes for its targets'
    #: agents still asked it twice a minute (11 of ~30 a pod over 150 s at 300 pods in the
    #: in-memory cluster; 20 more over a 10-minute start)
    cut_round_cap: float = 240.0
    #: a round the server failed (a timeout, SERVFAIL: it has fallen behind) is asked again
    #: after 0.5-1 s, then twice as long after each such failure, up to 8-16 s (as the pace's
    #: floor, ``dns_rate_floor``): within 0.1-1 s, every pod asked a server that could not
    #: answer every 2-3 s, for as long as it could not
    dns_round_backoff: Backoff = field(default_factory=lambda: Backoff(base=0.5, cap=16.0))
    #: on a sparse graph, rounds stop after this many answers in a row (until a peer must be
    #: reached again, or a contact from an address not listed asks for one): there the answer
    #: only says which addresses are the Service's, the targets are asked by name, and each
    #: further round is one more query a pod, every pod of the Job, for as long as it waits
    cut_rounds: int = 2
    #: past a cut Service answer (``agent.core.vouching``): the coordinator's first check of a
    #: held session's name waits this long (a member's report of its ring neighbour vouches for
    #: it first), and then only the lowest index not vouched for is checked
    vouch_wait: float = 10.0
    #: an address learnt from a peer whose pod does not answer yet is probed again this long
    #: after, then twice as long after each pass, up to ``learned_retry_cap``: its peer, a
    #: target, says hello once its agent is up, and the hello probes it at once
    learned_retry: float = 2.0
    learned_retry_cap: float = 30.0
    #: a contact from an address DNS does not list for the Service is said at debug level
    #: until it has lasted this long, then as a warning: cluster DNS publishes a new pod 5-30 s
    #: after it starts (coredns#2434, kubernetes#92559), and an answer from before it can stay
    #: cached 30 s more (kubeadm's Corefile: ``ttl 30``, ``cache 30``), so a healthy cluster
    #: has caught up within 60 s
    unlisted_warn_after: float = 60.0
    #: what waits to be vouched for (``agent.core.admission``) is re-checked this long after it
    #: came (the claimed pod's name asked again), then twice as long after each check, up to
    #: ``recheck_cap``; a contact (no session) not vouched for within ``unlisted_warn_after``
    #: is dropped
    recheck_first: float = 1.0
    recheck_cap: float = 8.0
    #: retries of attempts, dials and failing rounds: exponential, full jitter, capped
    backoff: Backoff = field(default_factory=Backoff)
    #: retries of an attempt whose every address refused (nobody listens yet), when the probe
    #: says hello: the same start, up to this cap. Such a peer says hello itself once its agent
    #: is up (a target targets this pod too), and the hello retries it at once, so the retries
    #: only cover a hello that never came: they notice a peer up within the cap. At ``backoff``'s
    #: 1 s a pod of a sparse graph of 1,000 waiting for its ~20 targets' agents tried ~33 of
    #: them a second, 45 CPU-ms a second (``bench.idlecut``), more than 1,000 such pods have
    #: on two cores
    refused_backoff: Backoff = field(default_factory=lambda: Backoff(base=0.05, cap=30.0))
    #: missing peers that a Service round cannot pair with the listed addresses that do not
    #: answer as a peer (refused, timed out, another token: none says which pod it is) are
    #: asked for by name once that has lasted this long, so each gets a reason of its own
    #: (``agent.core.ambiguity``); not sooner: a pod is listed from its address on
    #: (publishNotReadyAddresses) and refuses until its agent binds, so every start-up is
    #: briefly ambiguous, and asking every missing name then would multiply DNS queries by
    #: the Job's size. A healthy Job's agents bind within seconds of each other (init
    #: containers, a cached image); at most half the ``--timeout``, so the timeout's report
    #: has the names' answers
    ambiguous_by_name_after: float = 30.0
    #: at most this many missing peers are asked for so (the first, as the progress line names
    #: the first eight): many silent peers have one cause in common (image pulls, overload, a
    #: NetworkPolicy) that the hints name, and asking each name would cost every pod a query a
    #: missing peer, the DNS storm a large Job must never make
    ambiguous_by_name_max: int = 8
    #: by-name DNS queries a second the whole Job starts at, its pods all starting together
    #: (``agent.core.dnspace``): under a tenth of one CoreDNS instance (about 33,700 a second
    #: on 2 vCPU, CPU-bound); each pod grows from its share with every answer
    dns_start_job_rate: float = 2_500.0
    #: a pod's rate stays within these: at least this many a second (a pod of a huge Job still
    #: gets on), at most this many (3 % of one CoreDNS instance: a coordinator that alone asks
    #: for thousands of members' names)
    dns_rate_min: float = 2.0
    dns_rate_max: float = 1_000.0
    #: each query the server fails halves the rate, down to this (a query in 16 s): 300 pods
    #: ask a server that has fallen behind about 19 a second in all, and one that answers
    #: again is asked more by the pods that waited (each answer doubles a rate below 1 a
    #: second, then adds 1 a second)
    dns_rate_floor: float = 1.0 / 16
    #: a query put back because another for the same name is out is looked at again this soon
    #: (the one out lands within ``dns_timeout``, usually within milliseconds)
    dns_in_flight_poll: float = 0.1
    #: a name the server failed to answer (timeout, SERVFAIL) is asked again after 0.5-1 s,
    #: then twice as long after each failure, up to 4-8 s: within 8 s of the server healing
    dns_backoff: Backoff = field(default_factory=lambda: Backoff(base=0.5, cap=8.0))
    #: a name answered NXDOMAIN (or with no address) is asked again after 0.25-0.5 s, then
    #: twice as long after each such answer, up to 2-4 s, unless its pod says hello first:
    #: CoreDNS caches the negative answer 5 s (kubeadm: 30 s), so asking every second mostly
    #: hears the cached one again
    dns_negative_backoff: Backoff = field(default_factory=lambda: Backoff(base=0.25, cap=4.0))
    #: "DNS is slow" looks at this many seconds of queries, when at least this share of them
    #: (and ``dns_slow_least`` in number) got no answer; said at warning level once it has
    #: lasted ``dns_slow_warn_after``
    dns_slow_window: float = 10.0
    dns_slow_share: float = 0.2
    dns_slow_least: int = 5
    dns_slow_warn_after: float = 15.0
    #: a name whose every address refused is tried again at them, without asking DNS, this
    #: long after DNS gave them (``agent.core.refused``): CoreDNS's TTL for a pod's record
    refused_reuse: float = 5.0
    #: the same addresses given again by DNS and refused again: each window twice as long, up
    #: to this (kubeadm's Corefile caches an answer 30 s: asking sooner learns little)
    refused_reuse_cap: float = 30.0
    #: in total, past their windows, names that keep refusing are asked again one at a time,
    #: ``refused_reuse`` apart at first, then twice as far apart after each, up to this: each
    #: such peer says hello once its agent is up, which asks its name at once; this is only
    #: what finds one whose hello cannot come (``agent.core.refused``)
    refused_total_cap: float = 120.0
    #: with a probe that says hello, at most this many such queries in all: each late peer's
    #: hello asks its name again (``agent.core.refused``)
    refused_total_most: int = 2
    # --- the shell ------------------------------------------------------------------------------
    #: a TCP connect (a probe's, a member's dial), and an ICMP echo's reply
    connect_timeout: float = 3.0
    #: each message of the opening handshake
    handshake_timeout: float = 5.0
    #: a barrier message not out within this long drops its session (its reader reports it)
    send_timeout: float = 2.0
    #: one DNS query to one server: an answer later than this says the server has fallen
    #: behind (the pace slows as for a failure, ``agent.core.dnspace``), but is used all the
    #: same; with several servers, each but the last gets its share of this
    dns_timeout: float = 2.0
    #: how long the last server's query waits for its answer before it is a timeout. A server
    #: that falls behind answers late, not never: given up at ``dns_timeout``, each late answer
    #: was thrown away and the name asked again (pods of 300 real agents on two starved cores
    #: asked names two or three times, up to 43 queries; 40 agents whose first answers came
    #: 2.5 s late asked each of their ~14 names twice). glibc's resolver waits 5 s
    #: (``timeout:5``) too
    dns_answer_wait: float = 5.0
    #: TCP keepalive of a barrier session: a peer that vanished is noticed within
    #: idle + interval x count seconds
    keepalive_idle: int = 4
    keepalive_interval: int = 2
    keepalive_count: int = 3

    @property
    def keepalive(self) -> float:
        """How long a session to a peer that vanished without a word stays open."""
        return self.keepalive_idle + self.keepalive_interval * self.keepalive_count


#: what the agent runs with unless told otherwise
DEFAULT_TIMING = Timing()
