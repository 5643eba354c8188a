"""Inventory-facing filters: a table of names. The decisions, and the reading
of hostvars they need, live in module_utils; this file only exposes them to
playbooks, roles and templates."""

from ansible.errors import AnsibleFilterError
from ansible_collections.berth.ops.plugins.module_utils import (
    berth_cleanup,
    berth_docker,
    berth_env_placement,
    berth_env_spec,
    berth_firewall,
    berth_harbor_objects,
    berth_images,
    berth_inventory,
    berth_lab,
    berth_owned,
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


class FilterModule:
    def filters(self):
        return {
            "berth_inventory_errors": _wrap(berth_inventory.inventory_errors),
            "berth_address_errors": _wrap(berth_inventory.address_errors),
            "berth_building_of": _wrap(berth_inventory.building_of),
            "berth_building_attr": _wrap(berth_inventory.building_attr),
            "berth_building_registry": _wrap(berth_inventory.building_registry),
            "berth_docker_errors": _wrap(berth_docker.inventory_role_errors),
            "berth_overlapping_networks": _wrap(berth_inventory.overlapping_networks),
            "berth_lab_plan": _wrap(berth_lab.lab_plan),
            "berth_lab_inventory": _wrap(berth_lab.lab_inventory),
            "berth_lab_paths": _wrap(berth_lab.lab_paths),
            "berth_firewall_errors": _wrap(berth_firewall.spec_errors),
            "berth_firewall_opening_errors": _wrap(berth_firewall.openings_errors),
            "berth_firewall_opening_name_errors": _wrap(berth_firewall.opening_name_errors),
            "berth_port_sets": _wrap(berth_ports.port_sets),
            "berth_cleanup_report": _wrap(berth_cleanup.report_from_hostvars),
            "berth_cleanup_summary": _wrap(berth_cleanup.cleanup_summary),
            "berth_apps_of": _wrap(berth_rollout.apps_of),
            "berth_app_image": _wrap(berth_rollout.image_ref),
            "berth_image_tag": _wrap(berth_images.tag_of),
            "berth_rollout_plan": _wrap(berth_rollout.plan_from_hostvars),
            "berth_rollout_summary": _wrap(berth_rollout.summary_from_hostvars),
            "berth_key_paths": _wrap(berth_harbor_objects.key_paths),
            "berth_harbor_endpoints": _wrap(berth_harbor_objects.harbor_endpoints),
            "berth_harbor_site_errors": _wrap(berth_harbor_objects.site_errors),
            "berth_harbor_robot_full_name": _wrap(berth_harbor_objects.robot_full_name),
            "berth_pki_reissue_reasons": _wrap(berth_pki.reissue_reasons),
            "berth_rancher_cluster_errors": _wrap(berth_rancher.cluster_errors),
            "berth_rancher_server_url_error": _wrap(berth_rancher.server_url_error),
            "berth_rancher_password_errors": _wrap(berth_rancher.password_errors),
            "berth_rancher_membership": _wrap(berth_rancher.membership),
            "berth_rancher_install_args": _wrap(berth_rancher.install_arguments),
            "berth_rancher_firewall": _wrap(berth_rancher.node_firewall),
            "berth_env_plan": _wrap(berth_env_placement.env_plan),
            "berth_env_taken": _wrap(berth_env_placement.taken_addresses),
            "berth_env_healthcheck": _wrap(berth_env_placement.docker_healthcheck),
            "berth_env_host_buildings": _wrap(berth_env_spec.host_buildings),
            "berth_env_table": _wrap(berth_env_placement.env_table),
            "berth_env_mount": _wrap(berth_env_placement.volume_mount),
            "berth_env_rows": _wrap(berth_env_placement.table_rows),
            "berth_env_proxy_apps": _wrap(berth_env_placement.proxy_apps),
            "berth_env_networks": _wrap(berth_env_placement.service_networks),
            "berth_env_reach_errors": _wrap(berth_env_placement.reach_errors),
            "berth_env_firewall_opening": _wrap(berth_env_placement.firewall_opening),
            "berth_env_errors": _wrap(berth_env_spec.env_errors),
            "berth_env_names": _wrap(berth_env_spec.env_names),
            "berth_env_fixed_network": _wrap(berth_env_spec.fixed_network_of),
            "berth_container_default": _wrap(berth_rollout.container_default),
            "berth_owned_labels": _wrap(berth_owned.owned_labels),
        }
