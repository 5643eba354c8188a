"""Fixed addresses of a named environment's services on its building's
container_subnet: the reserved addresses, and the allocation, a pure
function deterministic per environment and service that never takes an
address another environment holds."""

import hashlib
import ipaddress

from ansible_collections.berth.ops.plugins.module_utils.berth_inventory import parse_network

# network, gateway and broadcast: the smallest subnet with one usable address
MIN_ADDRESSES = 4


def _as_network(subnet):
    if isinstance(subnet, (ipaddress.IPv4Network, ipaddress.IPv6Network)):
        return subnet
    return parse_network(subnet, "subnet")


def gateway(subnet):
    """The first host address of the subnet: the macvlan network's gateway."""
    network = _as_network(subnet)
    if network.num_addresses < MIN_ADDRESSES:
        raise ValueError("subnet %s is too small: it needs room for a gateway and a service" % network)
    return str(network.network_address + 1)


def reserved_addresses(subnet):
    """Addresses no service may have: network, gateway, broadcast."""
    network = _as_network(subnet)
    return {str(network.network_address), gateway(network), str(network.broadcast_address)}


def _usable_bounds(network):
    """First and last usable address as integers; everything in between is free to hand out."""
    gateway(network)
    return int(network.network_address) + 2, int(network.broadcast_address) - 1


def _parse_taken(text):
    # `docker network inspect` reports "10.0.0.5/24"; container inspect a bare address
    try:
        return ipaddress.ip_interface(text).ip
    except ValueError:
        raise ValueError("taken: %r is not an IP address" % (text,)) from None


def _hash_offset(key, count):
    """Where probing starts: sha256, so every Python process agrees (hash() is salted)."""
    return int.from_bytes(hashlib.sha256(key.encode()).digest(), "big") % count


def allocate_addresses(env_name, services, subnet, taken):
    """{service: ip} for the services of one environment.

    `taken` maps addresses in use in the building to their "env/service".
    Explicit ips are used as they are; the others start at a hash of
    "env/service" and probe upward. An address this very service already
    holds is kept, so re-creating an environment keeps its addresses.
    """
    network = _as_network(subnet)
    first, last = _usable_bounds(network)
    reserved = {int(ipaddress.ip_address(address)) for address in reserved_addresses(network)}
    holders = {}
    for text, holder in taken.items():
        address = _parse_taken(text)
        if address.version == network.version and address in network:
            holders[int(address)] = holder
    ordered = sorted(services, key=lambda service: service["name"])
    allocated, used = {}, {}
    for service in ordered:
        if not service.get("ip"):
            continue
        name, own = service["name"], "%s/%s" % (env_name, service["name"])
        try:
            address = ipaddress.ip_address(service["ip"])
        except ValueError:
            raise ValueError("services.%s.ip: %r is not an IP address" % (name, service["ip"])) from None
        if address.version != network.version or address not in network:
            raise ValueError("services.%s.ip: %s is outside the subnet %s" % (name, address, network))
        if int(address) in reserved:
            raise ValueError("services.%s.ip: %s is reserved in %s (network, gateway, broadcast)" % (name, address, network))
        holder = holders.get(int(address))
        if holder not in (None, own):
            raise ValueError("services.%s.ip: %s is already used by %s" % (name, address, holder))
        if int(address) in used:
            raise ValueError("services.%s.ip: %s is also the ip of service %s" % (name, address, used[int(address)]))
        allocated[name], used[int(address)] = int(address), name
    count = last - first + 1
    for service in ordered:
        name, own = service["name"], "%s/%s" % (env_name, service["name"])
        if name in allocated:
            continue
        kept = sorted(address for address, holder in holders.items() if holder == own and first <= address <= last and address not in used)
        if kept:
            chosen = kept[0]
        else:
            start = _hash_offset(own, count)
            chosen = None
            for step in range(count):
                candidate = first + (start + step) % count
                if candidate not in used and candidate not in holders:
                    chosen = candidate
                    break
            if chosen is None:
                raise ValueError("addresses exhausted in %s: none of its %d usable addresses is left for %s" % (network, count, own))
        allocated[name], used[chosen] = chosen, name
    return {name: str(ipaddress.ip_address(allocated[name])) for name in sorted(allocated)}
