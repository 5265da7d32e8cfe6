/// The keys config.md defines, per mapping, in the order the spec lists them (the order
/// also decides which suggestion wins a tie).
enum Keys {
    static let top = ["account_id", "listen", "upstreams", "upstream_timeout_ms", "upstream_attempt_timeout_ms",
                      "endpoint_dns_ttl", "cache_size", "cache_max_bytes", "udp_payload_size", "tcp_idle_timeout_ms",
                      "max_tcp_connections", "threads", "upstream_sockets", "default_vpc", "query_log", "log_cache_hits", "metrics",
                      "trusted_proxies", "dnstap", "console", "console_token",
                      "vpcs", "endpoints", "endpoint_services", "hosted_zones", "instances",
                      "health_checks"]
    static let vpc = ["id", "name", "region", "cidrs", "clients", "resolver_addresses", "inbound_endpoints",
                      "enable_dns_support", "enable_dns_hostnames", "resolver_rules", "allowed_sources", "autodefined_reverse"]
    static let inbound = ["id", "addresses"]
    static let rule = ["id", "domain", "type", "targets"]
    static let endpoint = ["id", "vpc", "service", "type", "private_dns_enabled",
                           "private_dns_only_for_inbound_resolver_endpoint", "dns_record_ip_type", "dns_suffix",
                           "subnets", "private_dns_names"]
    static let subnet = ["az", "ipv4", "ipv6", "health_check"]
    static let service = ["id", "region", "private_dns_name", "verification", "alias_style"]
    static let zone = ["id", "name", "vpcs", "file", "records"]
    static let record = ["name", "type", "ttl", "values", "alias",
                         "set_identifier", "weight", "failover", "multivalue_answer", "health_check", "evaluate_target_health"]
    static let healthCheck = ["id", "type", "ip", "port", "resource_path", "request_interval_ms", "failure_threshold", "inverted"]
    static let alias = ["endpoint", "dns_name", "record"]
    static let dnstap = ["socket", "identity", "version", "messages"]
    static let instance = ["id", "vpc", "ipv4", "ipv6", "resource_name_a", "resource_name_aaaa"]
}
