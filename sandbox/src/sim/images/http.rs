//! HTTP servers reachable on the pod's IP.

use super::jvm::{java_opts, last_value};
use super::{Role, Start, identify, repository_and_tag};

//
// Whether an image version has an HTTP server at all is read from the project's image contract
// table (`pravega_crds::contract`: `BookieContract::http_admin`, `PravegaContract::health`), the
// shared record of what each image version ships; what the container's settings make of it
// (enabled or not, port, bound address) is modelled here, from the sources cited.

/// An HTTP server a running modelled container serves on the pod's IP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct HttpServer {
    pub port: u16,
    pub api: HttpApi,
}

/// Which API an [`HttpServer`] serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HttpApi {
    /// BookKeeper's admin API (`HttpRouter`); `state_api`: `bookie/state` and `bookie/is_ready`
    /// (BookKeeper 4.10+).
    BookieAdmin { state_api: bool },
    /// Pravega's health API (0.10+) of a Controller or a Segment Store.
    PravegaHealth { component: &'static str },
}

/// `BK_httpServerPort`'s default (ServerConfiguration.java@release-4.14.1 `httpServerPort`,
/// default 8080; the same since 4.6.0).
const BOOKIE_HTTP_DEFAULT_PORT: u16 = 8080;
/// The Controller's REST port when `REST_SERVER_PORT` is empty (controller Config.java@v0.10.0
/// `REST_SERVER_PORT`, read from `controller.rest.serverPort`, default 9091).
const CONTROLLER_REST_DEFAULT_PORT: u16 = 9091;
/// The Segment Store's REST properties next to `rest.listener.host` (ServiceConfig.java@v0.10.0:
/// `rest.listener.port` 6061, `rest.listener.enable` true).
const SEGMENT_STORE_REST_PORT_PROPERTY: &str = "pravegaservice.rest.listener.port";
const SEGMENT_STORE_REST_ENABLE_PROPERTY: &str = "pravegaservice.rest.listener.enable";
/// A bookie's port when `BK_bookiePort` is empty (ServerConfiguration.java@release-4.14.1
/// `bookiePort`, default 3181).
pub(super) const BOOKIE_DEFAULT_PORT: u16 = 3181;

/// A port number as a variable or property gives it.
pub(super) fn port(name: &str, value: &str) -> Result<u16, String> {
    value
        .trim()
        .parse::<u16>()
        .ok()
        .filter(|p| *p != 0)
        .ok_or_else(|| format!("{name}={value:?} is not a port number"))
}

/// The HTTP server the container runs on the pod's IP, if any; an error names a setting that
/// keeps it from serving (e.g. a port that is not a number).
pub(crate) fn http_server(start: &Start<'_>) -> Result<Option<HttpServer>, String> {
    let Some((role, _)) = identify(start.image, start.args) else {
        return Ok(None);
    };
    let (_, tag) = repository_and_tag(start.image);
    let row = pravega_crds::contract::contract(tag.unwrap_or_default());
    let env = start.env;
    let value = |name: &str| env.get(name).map(String::as_str).unwrap_or("").trim();
    match role {
        Role::Bookie => {
            // The admin server exists from BookKeeper 4.6 (none in the 0.4 image's 4.5.0); it is
            // switched on by bk_server.conf's httpServerEnabled, which BK_httpServerEnabled reaches
            // only through apply-config-from-env.py (0.5+ images).
            let Some(admin) = row.bookie.http_admin else {
                return Ok(None);
            };
            if !row.bookie.config_from_env
                || !value("BK_httpServerEnabled").eq_ignore_ascii_case("true")
            {
                return Ok(None);
            }
            let port = match value("BK_httpServerPort") {
                "" => BOOKIE_HTTP_DEFAULT_PORT,
                p => port("BK_httpServerPort", p)?,
            };
            Ok(Some(HttpServer {
                port,
                api: HttpApi::BookieAdmin {
                    state_api: admin.state_api,
                },
            }))
        }
        Role::Controller => {
            if row.pravega.health.is_none() {
                return Ok(None);
            }
            // The Controller's REST server binds REST_SERVER_IP, 0.0.0.0 unless set.
            let port = match value("REST_SERVER_PORT") {
                "" => CONTROLLER_REST_DEFAULT_PORT,
                p => port("REST_SERVER_PORT", p)?,
            };
            Ok(Some(HttpServer {
                port,
                api: HttpApi::PravegaHealth {
                    component: "controller",
                },
            }))
        }
        Role::SegmentStore => {
            let Some(health) = row.pravega.health else {
                return Ok(None);
            };
            let flags = java_opts(env);
            let property = |name: &str| last_value(&flags, &format!("-D{name}="));
            if property(SEGMENT_STORE_REST_ENABLE_PROPERTY)
                .is_some_and(|v| v.eq_ignore_ascii_case("false"))
            {
                return Ok(None);
            }
            // rest.listener.host defaults to localhost: only reachable from inside the pod.
            if property(health.segment_store_host_property) != Some("0.0.0.0") {
                return Ok(None);
            }
            let port = match property(SEGMENT_STORE_REST_PORT_PROPERTY) {
                Some(p) => port(SEGMENT_STORE_REST_PORT_PROPERTY, p)?,
                None => u16::try_from(health.segment_store_port).unwrap_or(6061),
            };
            Ok(Some(HttpServer {
                port,
                api: HttpApi::PravegaHealth {
                    component: "segmentstore",
                },
            }))
        }
    }
}
