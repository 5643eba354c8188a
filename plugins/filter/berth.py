"""Inventory-facing filters. The decisions live in module_utils; these only
expose them to playbooks, roles and templates."""

from ansible.errors import AnsibleFilterError
from ansible_collections.berth.ops.plugins.module_utils import (
    berth_cleanup,
    berth_docker,
    berth_env,
    berth_firewall,
    berth_harbor_objects,
    berth_images,
    berth_inventory,
    berth_lab,
    berth_pki,
    berth_ports,
    berth_rancher,
    berth_rollout,
)


def _wrap(function):
    def filter_function(*args, **kwargs):
        try:
            return function(*args, **kwargs)
        except ValueError as exc:
            raise AnsibleFilterError(str(exc)) from exc

    filter_function.__name__ = function.__name__
    return filter_function


def building_attr(buildings, group_names, key, default=None):
    """A setting of the host's building, e.g. its registry mirrors. Hosts
    outside the inventory's buildings (the control host) get the default."""
    if not buildings or not set(group_names) & set(buildings):
        return default
    return buildings[berth_inventory.building_of(group_names, buildings)].get(key, default)


def overlapping_networks(cidrs, buildings):
    """Building subnets that any of `cidrs` overlaps, as readable strings."""
    mine = [(cidr, berth_inventory.parse_network(cidr, cidr)) for cidr in cidrs]
    return ["%s overlaps %s" % pair for pair in berth_inventory.overlaps(mine, berth_inventory.building_networks(buildings or {}))]


def docker_errors(settings, buildings):
    """Errors of the docker role's variables; address pools are checked
    against every building subnet of the inventory."""
    return berth_docker.role_errors(settings, berth_inventory.building_networks(buildings or {}))


def cleanup_report(docker_hosts, hostvars, registry_hosts, dry_run, finished):
    """Gather the cleanup results registered on every host into one report.
    `dry_run` is only what was asked; the report says what the modules did."""
    results, registries, missing, in_use = {}, {}, [], {}
    for host in docker_hosts:
        facts = hostvars[host]
        if "image_cleanup_in_use" not in facts:
            missing.append(host)
        else:
            in_use[host] = facts["image_cleanup_in_use"]
        results[host] = facts.get("image_cleanup_host_result")
    for host in registry_hosts:
        registries[host] = hostvars[host].get("image_cleanup_registry_result")
    harbor = (hostvars["localhost"].get("image_cleanup_harbor_result") or {}).get("results") or [] if "localhost" in hostvars else []
    return berth_cleanup.cleanup_report(docker_hosts, results, registries, harbor, missing, dry_run, finished, in_use)


def rollout_plan(app, apps, hosts, hostvars, buildings, settings, version="", mode="deploy"):
    """Target hosts of an app in building order and its batches, after every
    check that needs no host (berth_rollout.rollout_plan)."""
    group_names = {h: hostvars[h]["group_names"] for h in hosts}
    building_of = {}
    for host in hosts:
        try:
            building_of[host] = berth_inventory.building_of(group_names[host], buildings)
        except ValueError:
            continue
    registries = {name: (spec or {}).get("registry") for name, spec in (buildings or {}).items()}
    return berth_rollout.rollout_plan(app, apps, hosts, group_names, building_of, registries, settings or {}, version, mode)


def rollout_summary(hostvars, plan, buildings):
    """The fleet as the hosts' registered results say (berth_rollout.rollout_summary)."""
    entries = {}
    for host in plan["hosts"]:
        facts = hostvars[host]
        entries[host] = {
            "building": berth_inventory.building_of(facts["group_names"], buildings),
            "prepare": facts.get("rollout_prepare"),
            "result": facts.get("rollout_result"),
            "revert": facts.get("rollout_revert"),
        }
    return berth_rollout.rollout_summary(entries, plan)


def rancher_membership(clusters, groups, host):
    cluster, roles = berth_rancher.node_membership(clusters, groups, host)
    return {"cluster": cluster["name"] if cluster else None, "roles": roles}


def rancher_firewall(clusters, groups, hostvars, host):
    """Port sets and sources for a cluster node, from its cluster's node addresses."""
    addresses = {name: hostvars[name].get("ansible_host", name) for name in _cluster_hosts(clusters, groups)}
    return berth_rancher.firewall_sources(clusters, groups, addresses, host)


def _cluster_hosts(clusters, groups):
    return {host for cluster in clusters or [] for host in berth_rancher.cluster_roles(cluster, groups)}


class FilterModule:
    def filters(self):
        return {
            "berth_inventory_errors": _wrap(berth_inventory.inventory_errors),
            "berth_address_error": _wrap(berth_inventory.address_error),
            "berth_building_of": _wrap(berth_inventory.building_of),
            "berth_building_attr": _wrap(building_attr),
            "berth_docker_errors": _wrap(docker_errors),
            "berth_overlapping_networks": _wrap(overlapping_networks),
            "berth_lab_plan": _wrap(berth_lab.lab_plan),
            "berth_lab_inventory": _wrap(berth_lab.lab_inventory),
            "berth_lab_paths": _wrap(berth_lab.lab_paths),
            "berth_firewall_errors": _wrap(berth_firewall.spec_errors),
            "berth_firewall_opening_errors": _wrap(berth_firewall.openings_errors),
            "berth_firewall_opening_name_errors": _wrap(berth_firewall.opening_name_errors),
            "berth_port_sets": _wrap(berth_ports.port_sets),
            "berth_cleanup_report": _wrap(cleanup_report),
            "berth_cleanup_summary": _wrap(berth_cleanup.cleanup_summary),
            "berth_apps_of": _wrap(berth_rollout.apps_of),
            "berth_app_image": _wrap(berth_rollout.image_ref),
            "berth_image_tag": _wrap(berth_images.tag_of),
            "berth_rollout_plan": _wrap(rollout_plan),
            "berth_rollout_summary": _wrap(rollout_summary),
            "berth_key_paths": _wrap(berth_harbor_objects.key_paths),
            "berth_harbor_endpoints": _wrap(berth_harbor_objects.harbor_endpoints),
            "berth_harbor_site_errors": _wrap(berth_harbor_objects.site_errors),
            "berth_harbor_robot_full_name": _wrap(berth_harbor_objects.robot_full_name),
            "berth_pki_reissue_reasons": _wrap(berth_pki.reissue_reasons),
            "berth_rancher_cluster_errors": _wrap(berth_rancher.cluster_errors),
            "berth_rancher_server_url_error": _wrap(berth_rancher.server_url_error),
            "berth_rancher_password_errors": _wrap(berth_rancher.password_errors),
            "berth_rancher_membership": _wrap(rancher_membership),
            "berth_rancher_install_args": _wrap(berth_rancher.install_arguments),
            "berth_rancher_firewall": _wrap(rancher_firewall),
            "berth_env_plan": _wrap(berth_env.env_plan),
            "berth_env_taken": _wrap(berth_env.taken_addresses),
            "berth_env_healthcheck": _wrap(berth_env.docker_healthcheck),
            "berth_env_host_buildings": _wrap(berth_env.host_buildings),
            "berth_env_table": _wrap(berth_env.env_table),
            "berth_env_mount": _wrap(berth_env.volume_mount),
            "berth_env_rows": _wrap(berth_env.table_rows),
            "berth_env_proxy_apps": _wrap(berth_env.proxy_apps),
            "berth_env_networks": _wrap(berth_env.service_networks),
            "berth_env_reach_errors": _wrap(berth_env.reach_errors),
            "berth_env_firewall_opening": _wrap(berth_env.firewall_opening),
            "berth_env_errors": _wrap(berth_env.env_errors),
        }
