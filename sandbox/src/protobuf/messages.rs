//! The Kubernetes messages the sandbox accepts as protobuf, each converted field by field into
//! its k8s-openapi type (see [`message!`](super::convert::message)). The field lists are those
//! of k8s-pb 0.9 and k8s-openapi 0.29 (`v1_33`); `field => _` marks a field of a newer
//! Kubernetes than 1.33; `field?` a Go value (not pointer) field tagged `omitempty`, as declared
//! in the `types.go` files of k8s.io/api and k8s.io/apimachinery (`pkg/apis/meta/v1`).

mod apps_v1 {
    use crate::protobuf::convert::message;
    use k8s_openapi::api::apps::v1 as oa;
    use k8s_pb::api::apps::v1 as pb;

    message!(StatefulSet => StatefulSet { metadata, spec, status });
    message!(Deployment => Deployment { metadata, spec, status });
    message!(ReplicaSet => ReplicaSet { metadata, spec, status });
    message!(ControllerRevision => ControllerRevision { metadata, data, revision });
    message!(StatefulSetSpec => StatefulSetSpec { replicas, selector, template, volume_claim_templates, service_name, pod_management_policy?, update_strategy, revision_history_limit, min_ready_seconds?, persistent_volume_claim_retention_policy, ordinals });
    message!(StatefulSetStatus => StatefulSetStatus { observed_generation?, replicas, ready_replicas?, current_replicas?, updated_replicas?, current_revision?, update_revision?, collision_count, conditions, available_replicas });
    message!(DeploymentSpec => DeploymentSpec { replicas, selector, template, strategy, min_ready_seconds?, revision_history_limit, paused?, progress_deadline_seconds });
    message!(DeploymentStatus => DeploymentStatus { observed_generation?, replicas?, updated_replicas?, ready_replicas?, available_replicas?, unavailable_replicas?, terminating_replicas, conditions, collision_count });
    message!(ReplicaSetSpec => ReplicaSetSpec { replicas, min_ready_seconds?, selector, template });
    message!(ReplicaSetStatus => ReplicaSetStatus { replicas, fully_labeled_replicas?, ready_replicas?, available_replicas?, terminating_replicas, observed_generation?, conditions });
    message!(StatefulSetUpdateStrategy => StatefulSetUpdateStrategy { r#type => type_?, rolling_update });
    message!(StatefulSetPersistentVolumeClaimRetentionPolicy => StatefulSetPersistentVolumeClaimRetentionPolicy { when_deleted?, when_scaled? });
    message!(StatefulSetOrdinals => StatefulSetOrdinals { start });
    message!(StatefulSetCondition => StatefulSetCondition { r#type => type_, status, last_transition_time, reason?, message? });
    message!(DeploymentStrategy => DeploymentStrategy { r#type => type_?, rolling_update });
    message!(DeploymentCondition => DeploymentCondition { r#type => type_, status, last_update_time, last_transition_time, reason?, message? });
    message!(ReplicaSetCondition => ReplicaSetCondition { r#type => type_, status, last_transition_time, reason?, message? });
    message!(RollingUpdateStatefulSetStrategy => RollingUpdateStatefulSetStrategy { partition, max_unavailable });
    message!(RollingUpdateDeployment => RollingUpdateDeployment { max_unavailable, max_surge });
}

mod autoscaling_v1 {
    use crate::protobuf::convert::message;
    use k8s_openapi::api::autoscaling::v1 as oa;
    use k8s_pb::api::autoscaling::v1 as pb;

    message!(Scale => Scale { metadata, spec, status });
    message!(ScaleSpec => ScaleSpec { replicas? });
    message!(ScaleStatus => ScaleStatus { replicas, selector? });
}

mod coordination_v1 {
    use crate::protobuf::convert::message;
    use k8s_openapi::api::coordination::v1 as oa;
    use k8s_pb::api::coordination::v1 as pb;

    message!(Lease => Lease { metadata, spec });
    message!(LeaseSpec => LeaseSpec { holder_identity, lease_duration_seconds, acquire_time, renew_time, lease_transitions, strategy, preferred_holder });
}

mod core_v1 {
    use crate::protobuf::convert::message;
    use k8s_openapi::api::core::v1 as oa;
    use k8s_pb::api::core::v1 as pb;

    message!(Namespace => Namespace { metadata, spec, status });
    message!(Pod => Pod { metadata, spec, status });
    message!(Service => Service { metadata, spec, status });
    message!(Endpoints => Endpoints { metadata, subsets });
    message!(ConfigMap => ConfigMap { metadata, immutable, data, binary_data });
    message!(Secret => Secret { metadata, immutable, data, string_data, r#type => type_? });
    message!(Event => Event { metadata, involved_object, reason?, message?, source, first_timestamp, last_timestamp, count?, r#type => type_?, event_time, series, action?, related, reporting_component, reporting_instance });
    message!(ServiceAccount => ServiceAccount { metadata, secrets, image_pull_secrets, automount_service_account_token });
    message!(PersistentVolumeClaim => PersistentVolumeClaim { metadata, spec, status });
    message!(Node => Node { metadata, spec, status });
    message!(NamespaceSpec => NamespaceSpec { finalizers });
    message!(NamespaceStatus => NamespaceStatus { phase?, conditions });
    message!(PodSpec => PodSpec { volumes, init_containers, containers, ephemeral_containers, restart_policy?, termination_grace_period_seconds, active_deadline_seconds, dns_policy?, node_selector, service_account_name?, service_account?, automount_service_account_token, node_name?, host_network?, host_pid?, host_ipc?, share_process_namespace, security_context, image_pull_secrets, hostname?, subdomain?, affinity, scheduler_name?, tolerations, host_aliases, priority_class_name?, priority, dns_config, readiness_gates, runtime_class_name, enable_service_links, preemption_policy, overhead, topology_spread_constraints, set_hostname_as_fqdn, os, host_users, scheduling_gates, resource_claims, resources, hostname_override => _, workload_ref => _ });
    message!(PodStatus => PodStatus { observed_generation?, phase?, conditions, message?, reason?, nominated_node_name?, host_ip?, host_ips, pod_ip?, pod_ips, start_time, init_container_statuses, container_statuses, qos_class?, ephemeral_container_statuses, resize?, resource_claim_statuses, extended_resource_claim_status => _, allocated_resources => _, resources => _ });
    message!(ServiceSpec => ServiceSpec { ports, selector, cluster_ip?, cluster_ips, r#type => type_?, external_ips, session_affinity?, load_balancer_ip?, load_balancer_source_ranges, external_name?, external_traffic_policy?, health_check_node_port?, publish_not_ready_addresses?, session_affinity_config, ip_families, ip_family_policy, allocate_load_balancer_node_ports, load_balancer_class, internal_traffic_policy, traffic_distribution });
    message!(ServiceStatus => ServiceStatus { load_balancer, conditions });
    message!(EndpointSubset => EndpointSubset { addresses, not_ready_addresses, ports });
    message!(ObjectReference => ObjectReference { kind?, namespace?, name?, uid?, api_version?, resource_version?, field_path? });
    message!(EventSource => EventSource { component?, host? });
    message!(EventSeries => EventSeries { count?, last_observed_time });
    message!(LocalObjectReference => LocalObjectReference { name? });
    message!(PersistentVolumeClaimSpec => PersistentVolumeClaimSpec { access_modes, selector, resources, volume_name?, storage_class_name, volume_mode, data_source, data_source_ref, volume_attributes_class_name });
    message!(PersistentVolumeClaimStatus => PersistentVolumeClaimStatus { phase?, access_modes, capacity, conditions, allocated_resources, allocated_resource_statuses, current_volume_attributes_class_name, modify_volume_status });
    message!(NodeSpec => NodeSpec { pod_cidr?, pod_cid_rs => pod_cidrs, provider_id?, unschedulable?, taints, config_source, external_id? });
    message!(NodeStatus => NodeStatus { capacity, allocatable, phase?, conditions, addresses, daemon_endpoints, node_info, images, volumes_in_use, volumes_attached, config, runtime_handlers, features, declared_features => _ });
    message!(NamespaceCondition => NamespaceCondition { r#type => type_, status, last_transition_time, reason?, message? });
    message!(Volume => Volume { name } inline volume_source: VolumeSource { host_path, empty_dir, gce_persistent_disk, aws_elastic_block_store, git_repo, secret, nfs, iscsi, glusterfs, persistent_volume_claim, rbd, flex_volume, cinder, cephfs, flocker, downward_api, fc, azure_file, config_map, vsphere_volume, quobyte, azure_disk, photon_persistent_disk, projected, portworx_volume, scale_io, storageos, csi, ephemeral, image });
    message!(Container => Container { name, image?, command, args, working_dir?, ports, env_from, env, resources, resize_policy, restart_policy, restart_policy_rules => _, volume_mounts, volume_devices, liveness_probe, readiness_probe, startup_probe, lifecycle, termination_message_path?, termination_message_policy?, image_pull_policy?, security_context, stdin?, stdin_once?, tty? });
    message!(EphemeralContainer => EphemeralContainer { target_container_name? } inline ephemeral_container_common: EphemeralContainerCommon { name, image?, command, args, working_dir?, ports, env_from, env, resources, resize_policy, restart_policy, restart_policy_rules => _, volume_mounts, volume_devices, liveness_probe, readiness_probe, startup_probe, lifecycle, termination_message_path?, termination_message_policy?, image_pull_policy?, security_context, stdin?, stdin_once?, tty? });
    message!(PodSecurityContext => PodSecurityContext { se_linux_options, windows_options, run_as_user, run_as_group, run_as_non_root, supplemental_groups, supplemental_groups_policy, fs_group, sysctls, fs_group_change_policy, seccomp_profile, app_armor_profile, se_linux_change_policy });
    message!(Affinity => Affinity { node_affinity, pod_affinity, pod_anti_affinity });
    message!(Toleration => Toleration { key?, operator?, value?, effect?, toleration_seconds });
    message!(HostAlias => HostAlias { ip, hostnames });
    message!(PodDnsConfig => PodDNSConfig { nameservers, searches, options });
    message!(PodReadinessGate => PodReadinessGate { condition_type });
    message!(TopologySpreadConstraint => TopologySpreadConstraint { max_skew, topology_key, when_unsatisfiable, label_selector, min_domains, node_affinity_policy, node_taints_policy, match_label_keys });
    message!(PodOs => PodOS { name });
    message!(PodSchedulingGate => PodSchedulingGate { name });
    message!(PodResourceClaim => PodResourceClaim { name, resource_claim_name, resource_claim_template_name });
    message!(ResourceRequirements => ResourceRequirements { limits, requests, claims });
    message!(PodCondition => PodCondition { r#type => type_, observed_generation?, status, last_probe_time, last_transition_time, reason?, message? });
    message!(HostIp => HostIP { ip });
    message!(PodIp => PodIP { ip });
    message!(ContainerStatus => ContainerStatus { name, state, last_state, ready, restart_count, image, image_id, container_id?, started, allocated_resources, resources, volume_mounts, user, allocated_resources_status, stop_signal });
    message!(PodResourceClaimStatus => PodResourceClaimStatus { name, resource_claim_name });
    message!(ServicePort => ServicePort { name?, protocol?, app_protocol, port, target_port, node_port? });
    message!(SessionAffinityConfig => SessionAffinityConfig { client_ip });
    message!(LoadBalancerStatus => LoadBalancerStatus { ingress });
    message!(EndpointAddress => EndpointAddress { ip, hostname?, node_name, target_ref });
    message!(EndpointPort => EndpointPort { name?, port, protocol?, app_protocol });
    message!(VolumeResourceRequirements => VolumeResourceRequirements { limits, requests });
    message!(TypedLocalObjectReference => TypedLocalObjectReference { api_group, kind, name });
    message!(TypedObjectReference => TypedObjectReference { api_group, kind, name, namespace });
    message!(PersistentVolumeClaimCondition => PersistentVolumeClaimCondition { r#type => type_, status, last_probe_time, last_transition_time, reason?, message? });
    message!(ModifyVolumeStatus => ModifyVolumeStatus { target_volume_attributes_class_name?, status });
    message!(Taint => Taint { key, value?, effect, time_added });
    message!(NodeConfigSource => NodeConfigSource { config_map });
    message!(NodeCondition => NodeCondition { r#type => type_, status, last_heartbeat_time, last_transition_time, reason?, message? });
    message!(NodeAddress => NodeAddress { r#type => type_, address });
    message!(NodeDaemonEndpoints => NodeDaemonEndpoints { kubelet_endpoint });
    message!(NodeSystemInfo => NodeSystemInfo { machine_id, system_uuid, boot_id, kernel_version, os_image, container_runtime_version, kubelet_version, kube_proxy_version, operating_system, architecture, swap });
    message!(ContainerImage => ContainerImage { names, size_bytes? });
    message!(AttachedVolume => AttachedVolume { name, device_path });
    message!(NodeConfigStatus => NodeConfigStatus { assigned, active, last_known_good, error? });
    message!(NodeRuntimeHandler => NodeRuntimeHandler { name, features });
    message!(NodeFeatures => NodeFeatures { supplemental_groups_policy });
    message!(PodTemplateSpec => PodTemplateSpec { metadata, spec });
    message!(HostPathVolumeSource => HostPathVolumeSource { path, r#type => type_ });
    message!(EmptyDirVolumeSource => EmptyDirVolumeSource { medium?, size_limit });
    message!(GcePersistentDiskVolumeSource => GCEPersistentDiskVolumeSource { pd_name, fs_type?, partition?, read_only? });
    message!(AwsElasticBlockStoreVolumeSource => AWSElasticBlockStoreVolumeSource { volume_id, fs_type?, partition?, read_only? });
    message!(GitRepoVolumeSource => GitRepoVolumeSource { repository, revision?, directory? });
    message!(SecretVolumeSource => SecretVolumeSource { secret_name?, items, default_mode, optional });
    message!(NfsVolumeSource => NFSVolumeSource { server, path, read_only? });
    message!(IscsiVolumeSource => ISCSIVolumeSource { target_portal, iqn, lun, iscsi_interface?, fs_type?, read_only?, portals, chap_auth_discovery?, chap_auth_session?, secret_ref, initiator_name });
    message!(GlusterfsVolumeSource => GlusterfsVolumeSource { endpoints, path, read_only? });
    message!(PersistentVolumeClaimVolumeSource => PersistentVolumeClaimVolumeSource { claim_name, read_only? });
    message!(RbdVolumeSource => RBDVolumeSource { monitors, image, fs_type?, pool?, user?, keyring?, secret_ref, read_only? });
    message!(FlexVolumeSource => FlexVolumeSource { driver, fs_type?, secret_ref, read_only?, options });
    message!(CinderVolumeSource => CinderVolumeSource { volume_id, fs_type?, read_only?, secret_ref });
    message!(CephFsVolumeSource => CephFSVolumeSource { monitors, path?, user?, secret_file?, secret_ref, read_only? });
    message!(FlockerVolumeSource => FlockerVolumeSource { dataset_name?, dataset_uuid? });
    message!(DownwardAPIVolumeSource => DownwardAPIVolumeSource { items, default_mode });
    message!(FcVolumeSource => FCVolumeSource { target_ww_ns => target_wwns, lun, fs_type?, read_only?, wwids });
    message!(AzureFileVolumeSource => AzureFileVolumeSource { secret_name, share_name, read_only? });
    message!(ConfigMapVolumeSource => ConfigMapVolumeSource { items, default_mode, optional } inline local_object_reference: LocalObjectReference { name? });
    message!(VsphereVirtualDiskVolumeSource => VsphereVirtualDiskVolumeSource { volume_path, fs_type?, storage_policy_name?, storage_policy_id? });
    message!(QuobyteVolumeSource => QuobyteVolumeSource { registry, volume, read_only?, user?, group?, tenant? });
    message!(AzureDiskVolumeSource => AzureDiskVolumeSource { disk_name, disk_uri, caching_mode, fs_type, read_only, kind });
    message!(PhotonPersistentDiskVolumeSource => PhotonPersistentDiskVolumeSource { pd_id, fs_type? });
    message!(ProjectedVolumeSource => ProjectedVolumeSource { sources, default_mode });
    message!(PortworxVolumeSource => PortworxVolumeSource { volume_id, fs_type?, read_only? });
    message!(ScaleIoVolumeSource => ScaleIOVolumeSource { gateway, system, secret_ref, ssl_enabled?, protection_domain?, storage_pool?, storage_mode?, volume_name?, fs_type?, read_only? });
    message!(StorageOsVolumeSource => StorageOSVolumeSource { volume_name?, volume_namespace?, fs_type?, read_only?, secret_ref });
    message!(CSIVolumeSource => CSIVolumeSource { driver, read_only, fs_type, volume_attributes, node_publish_secret_ref });
    message!(EphemeralVolumeSource => EphemeralVolumeSource { volume_claim_template });
    message!(ImageVolumeSource => ImageVolumeSource { reference?, pull_policy? });
    message!(ContainerPort => ContainerPort { name?, host_port?, container_port, protocol?, host_ip? });
    message!(EnvFromSource => EnvFromSource { prefix?, config_map_ref, secret_ref });
    message!(EnvVar => EnvVar { name, value?, value_from });
    message!(ContainerResizePolicy => ContainerResizePolicy { resource_name, restart_policy });
    message!(VolumeMount => VolumeMount { name, read_only?, recursive_read_only, mount_path, sub_path?, mount_propagation, sub_path_expr? });
    message!(VolumeDevice => VolumeDevice { name, device_path });
    message!(Probe => Probe { initial_delay_seconds?, timeout_seconds?, period_seconds?, success_threshold?, failure_threshold?, termination_grace_period_seconds } inline handler: ProbeHandler { exec, http_get, tcp_socket, grpc });
    message!(Lifecycle => Lifecycle { post_start, pre_stop, stop_signal });
    message!(SecurityContext => SecurityContext { capabilities, privileged, se_linux_options, windows_options, run_as_user, run_as_group, run_as_non_root, read_only_root_filesystem, allow_privilege_escalation, proc_mount, seccomp_profile, app_armor_profile });
    message!(SeLinuxOptions => SELinuxOptions { user?, role?, r#type => type_?, level? });
    message!(WindowsSecurityContextOptions => WindowsSecurityContextOptions { gmsa_credential_spec_name, gmsa_credential_spec, run_as_user_name, host_process });
    message!(Sysctl => Sysctl { name, value });
    message!(SeccompProfile => SeccompProfile { r#type => type_, localhost_profile });
    message!(AppArmorProfile => AppArmorProfile { r#type => type_, localhost_profile });
    message!(NodeAffinity => NodeAffinity { required_during_scheduling_ignored_during_execution, preferred_during_scheduling_ignored_during_execution });
    message!(PodAffinity => PodAffinity { required_during_scheduling_ignored_during_execution, preferred_during_scheduling_ignored_during_execution });
    message!(PodAntiAffinity => PodAntiAffinity { required_during_scheduling_ignored_during_execution, preferred_during_scheduling_ignored_during_execution });
    message!(PodDnsConfigOption => PodDNSConfigOption { name?, value });
    message!(ResourceClaim => ResourceClaim { name, request? });
    message!(ContainerState => ContainerState { waiting, running, terminated });
    message!(VolumeMountStatus => VolumeMountStatus { name, mount_path, read_only?, recursive_read_only });
    message!(ContainerUser => ContainerUser { linux });
    message!(ResourceStatus => ResourceStatus { name, resources });
    message!(ClientIpConfig => ClientIPConfig { timeout_seconds });
    message!(LoadBalancerIngress => LoadBalancerIngress { ip?, hostname?, ip_mode, ports });
    message!(ConfigMapNodeConfigSource => ConfigMapNodeConfigSource { namespace, name, uid?, resource_version?, kubelet_config_key });
    message!(DaemonEndpoint => DaemonEndpoint { port });
    message!(NodeSwapStatus => NodeSwapStatus { capacity });
    message!(NodeRuntimeHandlerFeatures => NodeRuntimeHandlerFeatures { recursive_read_only_mounts, user_namespaces });
    message!(KeyToPath => KeyToPath { key, path, mode });
    message!(DownwardAPIVolumeFile => DownwardAPIVolumeFile { path, field_ref, resource_field_ref, mode });
    message!(VolumeProjection => VolumeProjection { secret, downward_api, config_map, service_account_token, cluster_trust_bundle, pod_certificate => _ });
    message!(PersistentVolumeClaimTemplate => PersistentVolumeClaimTemplate { metadata, spec });
    message!(ConfigMapEnvSource => ConfigMapEnvSource { optional } inline local_object_reference: LocalObjectReference { name? });
    message!(SecretEnvSource => SecretEnvSource { optional } inline local_object_reference: LocalObjectReference { name? });
    message!(EnvVarSource => EnvVarSource { field_ref, resource_field_ref, config_map_key_ref, secret_key_ref, file_key_ref => _ });
    message!(ExecAction => ExecAction { command });
    message!(HttpGetAction => HTTPGetAction { path?, port, host?, scheme?, http_headers });
    message!(TcpSocketAction => TCPSocketAction { port, host? });
    message!(GrpcAction => GRPCAction { port, service });
    message!(LifecycleHandler => LifecycleHandler { exec, http_get, tcp_socket, sleep });
    message!(Capabilities => Capabilities { add, drop });
    message!(NodeSelector => NodeSelector { node_selector_terms });
    message!(PreferredSchedulingTerm => PreferredSchedulingTerm { weight, preference });
    message!(PodAffinityTerm => PodAffinityTerm { label_selector, namespaces, topology_key, namespace_selector, match_label_keys, mismatch_label_keys });
    message!(WeightedPodAffinityTerm => WeightedPodAffinityTerm { weight, pod_affinity_term });
    message!(ContainerStateWaiting => ContainerStateWaiting { reason?, message? });
    message!(ContainerStateRunning => ContainerStateRunning { started_at });
    message!(ContainerStateTerminated => ContainerStateTerminated { exit_code, signal?, reason?, message?, started_at, finished_at, container_id? });
    message!(LinuxContainerUser => LinuxContainerUser { uid, gid, supplemental_groups });
    message!(ResourceHealth => ResourceHealth { resource_id, health? });
    message!(PortStatus => PortStatus { port, protocol, error });
    message!(ObjectFieldSelector => ObjectFieldSelector { api_version?, field_path });
    message!(ResourceFieldSelector => ResourceFieldSelector { container_name?, resource, divisor });
    message!(SecretProjection => SecretProjection { items, optional } inline local_object_reference: LocalObjectReference { name? });
    message!(DownwardAPIProjection => DownwardAPIProjection { items });
    message!(ConfigMapProjection => ConfigMapProjection { items, optional } inline local_object_reference: LocalObjectReference { name? });
    message!(ServiceAccountTokenProjection => ServiceAccountTokenProjection { audience?, expiration_seconds, path });
    message!(ClusterTrustBundleProjection => ClusterTrustBundleProjection { name, signer_name, label_selector, optional, path });
    message!(ConfigMapKeySelector => ConfigMapKeySelector { key, optional } inline local_object_reference: LocalObjectReference { name? });
    message!(SecretKeySelector => SecretKeySelector { key, optional } inline local_object_reference: LocalObjectReference { name? });
    message!(HttpHeader => HTTPHeader { name, value });
    message!(SleepAction => SleepAction { seconds });
    message!(NodeSelectorTerm => NodeSelectorTerm { match_expressions, match_fields });
    message!(NodeSelectorRequirement => NodeSelectorRequirement { key, operator, values });
}

mod events_v1 {
    use crate::protobuf::convert::message;
    use k8s_openapi::api::events::v1 as oa;
    use k8s_pb::api::events::v1 as pb;

    message!(Event => Event { metadata, event_time, series, reporting_controller?, reporting_instance?, action?, reason?, regarding, related, note?, r#type => type_?, deprecated_source, deprecated_first_timestamp, deprecated_last_timestamp, deprecated_count? });
    message!(EventSeries => EventSeries { count, last_observed_time });
}

mod policy_v1 {
    use crate::protobuf::convert::message;
    use k8s_openapi::api::policy::v1 as oa;
    use k8s_pb::api::policy::v1 as pb;

    message!(PodDisruptionBudget => PodDisruptionBudget { metadata, spec, status });
    message!(PodDisruptionBudgetSpec => PodDisruptionBudgetSpec { min_available, selector, max_unavailable, unhealthy_pod_eviction_policy });
    message!(PodDisruptionBudgetStatus => PodDisruptionBudgetStatus { observed_generation?, disrupted_pods, disruptions_allowed, current_healthy, desired_healthy, expected_pods, conditions });
}

mod rbac_v1 {
    use crate::protobuf::convert::message;
    use k8s_openapi::api::rbac::v1 as oa;
    use k8s_pb::api::rbac::v1 as pb;

    message!(Role => Role { metadata, rules });
    message!(RoleBinding => RoleBinding { metadata, subjects, role_ref });
    message!(ClusterRole => ClusterRole { metadata, rules, aggregation_rule });
    message!(ClusterRoleBinding => ClusterRoleBinding { metadata, subjects, role_ref });
    message!(PolicyRule => PolicyRule { verbs, api_groups, resources, resource_names, non_resource_ur_ls => non_resource_urls });
    message!(Subject => Subject { kind, api_group?, name, namespace? });
    message!(RoleRef => RoleRef { api_group, kind, name });
    message!(AggregationRule => AggregationRule { cluster_role_selectors });
}

mod apimachinery_meta_v1 {
    use crate::protobuf::convert::message;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1 as oa;
    use k8s_pb::apimachinery::pkg::apis::meta::v1 as pb;

    message!(ObjectMeta => ObjectMeta { name?, generate_name?, namespace?, self_link?, uid?, resource_version?, generation?, creation_timestamp, deletion_timestamp, deletion_grace_period_seconds, labels, annotations, owner_references, finalizers, managed_fields });
    message!(OwnerReference => OwnerReference { api_version, kind, name, uid, controller, block_owner_deletion });
    message!(ManagedFieldsEntry => ManagedFieldsEntry { manager?, operation?, api_version?, time, fields_type?, fields_v1, subresource? });
    message!(Condition => Condition { r#type => type_, status, observed_generation?, last_transition_time, reason, message });
    message!(LabelSelector => LabelSelector { match_labels, match_expressions });
    message!(LabelSelectorRequirement => LabelSelectorRequirement { key, operator, values });
}
