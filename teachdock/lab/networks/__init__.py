"""Chapter 08, networks: a Docker bridge network built by hand in namespaces of the lab's own
(byhand), its nftables rules as text (nft_text), the topology drawn from netlink data
(topology), latency and throughput measured with busybox nc (measure), the daemon's side
through the docker CLI (daemon_side, dnswatch), and the exercises (checks).
"""
