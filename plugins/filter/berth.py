"""Inventory-facing filters: a table of names. The decisions, and the reading
of hostvars they need, live in module_utils; this file only exposes them to
playbooks, roles and templates.

Each filter imports its module_utils on first use. Ansible runs every task
in a process of its own, and code under ansible_collections is compiled
from source at each import there: importing all of module_utils for one
filter cost a site.yml run about a sixth of its controller time."""

import importlib

from ansible.errors import AnsibleFilterError

PACKAGE = "ansible_collections.berth.ops.plugins.module_utils."

# filter name: (module_utils module, function)
FILTERS = {
    "berth_inventory_errors": ("berth_inventory", "inventory_errors"),
    "berth_address_errors": ("berth_inventory", "address_errors"),
    "berth_building_of": ("berth_inventory", "building_of"),
    "berth_building_attr": ("berth_inventory", "building_attr"),
    "berth_building_registry": ("berth_inventory", "building_registry"),
    "berth_docker_errors": ("berth_docker", "inventory_role_errors"),
    "berth_overlapping_networks": ("berth_inventory", "overlapping_networks"),
    "berth_lab_plan": ("berth_lab", "lab_plan"),
    "berth_lab_sized": ("berth_lab", "sized_topology"),
    "berth_lab_inventory": ("berth_lab", "lab_inventory"),
    "berth_lab_paths": ("berth_lab", "lab_paths"),
    "berth_firewall_errors": ("berth_firewall", "spec_errors"),
    "berth_firewall_opening_errors": ("berth_firewall", "openings_errors"),
    "berth_firewall_opening_name_errors": ("berth_firewall", "opening_name_errors"),
    "berth_port_sets": ("berth_ports", "port_sets"),
    "berth_cleanup_report": ("berth_cleanup", "report_from_hostvars"),
    "berth_cleanup_summary": ("berth_cleanup", "cleanup_summary"),
    "berth_apps_of": ("berth_rollout", "apps_of"),
    "berth_app_image": ("berth_rollout", "image_ref"),
    "berth_image_tag": ("berth_images", "tag_of"),
    "berth_rollout_plan": ("berth_rollout", "plan_from_hostvars"),
    "berth_rollout_summary": ("berth_rollout", "summary_from_hostvars"),
    "berth_key_paths": ("berth_harbor_objects", "key_paths"),
    "berth_harbor_endpoints": ("berth_harbor_objects", "harbor_endpoints"),
    "berth_harbor_site_errors": ("berth_harbor_objects", "site_errors"),
    "berth_harbor_robot_full_name": ("berth_harbor_objects", "robot_full_name"),
    "berth_pki_reissue_reasons": ("berth_pki", "reissue_reasons"),
    "berth_rancher_cluster_errors": ("berth_rancher", "cluster_errors"),
    "berth_rancher_server_url_error": ("berth_rancher", "server_url_error"),
    "berth_rancher_password_errors": ("berth_rancher", "password_errors"),
    "berth_rancher_membership": ("berth_rancher", "membership"),
    "berth_rancher_install_args": ("berth_rancher", "install_arguments"),
    "berth_rancher_firewall": ("berth_rancher", "node_firewall"),
    "berth_env_plan": ("berth_env_placement", "env_plan"),
    "berth_env_taken": ("berth_env_placement", "taken_addresses"),
    "berth_env_healthcheck": ("berth_env_placement", "docker_healthcheck"),
    "berth_env_host_buildings": ("berth_env_spec", "host_buildings"),
    "berth_env_table": ("berth_env_placement", "env_table"),
    "berth_env_mount": ("berth_env_placement", "volume_mount"),
    "berth_env_rows": ("berth_env_placement", "table_rows"),
    "berth_env_proxy_apps": ("berth_env_placement", "proxy_apps"),
    "berth_env_networks": ("berth_env_placement", "service_networks"),
    "berth_env_reach_errors": ("berth_env_placement", "reach_errors"),
    "berth_env_firewall_opening": ("berth_env_placement", "firewall_opening"),
    "berth_env_errors": ("berth_env_spec", "env_errors"),
    "berth_env_names": ("berth_env_spec", "env_names"),
    "berth_env_fixed_network": ("berth_env_spec", "fixed_network_of"),
    "berth_container_default": ("berth_rollout", "container_default"),
    "berth_owned_labels": ("berth_owned", "owned_labels"),
    "berth_pick_builder": ("berth_build_queue", "pick_builder"),
}


def _lazy(name, module, function):
    def filter_function(*args, **kwargs):
        target = getattr(importlib.import_module(PACKAGE + module), function)
        try:
            return target(*args, **kwargs)
        except ValueError as exc:
            raise AnsibleFilterError(str(exc)) from exc

    filter_function.__name__ = name
    return filter_function


class FilterModule:
    def filters(self):
        return {name: _lazy(name, module, function) for name, (module, function) in FILTERS.items()}
