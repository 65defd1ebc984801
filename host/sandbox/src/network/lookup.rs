//! `wasi:sockets/ip-name-lookup`, replaced by one that asks the policy.
//!
//! wasmtime-wasi's own lookup is all-or-nothing (`allow_ip_name_lookup`), and
//! its stream type cannot be built outside that crate, so the generated
//! `add_to_linker` cannot be reused with another `Host`. Instead the four
//! items of the interface (the `resolve-address-stream` resource, its two
//! methods and `resolve-addresses`) are defined again over those wasmtime-wasi
//! added, with shadowing allowed for just these definitions. If the
//! interface's version ever differs from [`INTERFACE`], wasmtime-wasi's
//! lookup (which refuses every name here) stays in place: fail closed.
//!
//! `resolve-addresses` refuses an ungranted or malformed name at once, before
//! anything is resolved; a granted name is resolved by the host in a task
//! owned by the stream (dropping the stream cancels it), and the stream yields
//! only the addresses [`InstanceNetwork::lookup`] lets through.

use super::allow::parse_ip_literal;
use super::policy::{InstanceNetwork, NetworkError};
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;
use wasmtime::component::{Linker, Resource, ResourceTable, ResourceType};
use wasmtime_wasi::p2::bindings::sockets::network::{ErrorCode, IpAddress};
use wasmtime_wasi::p2::{DynPollable, Network, Pollable, subscribe};
use wasmtime_wasi::runtime::{AbortOnDropJoinHandle, poll_noop, spawn};

/// The interface replaced, at the version wasmtime-wasi 48 defines.
pub const INTERFACE: &str = "wasi:sockets/ip-name-lookup@0.2.12";

/// Store data that can serve the lookup interface.
pub trait LookupView: Send + 'static {
    /// The resource table and the instance's network (`None`: no grants).
    fn lookup_view(&mut self) -> (&mut ResourceTable, Option<&Arc<InstanceNetwork>>);
}

/// The `resolve-address-stream` resource.
pub struct LookupStream {
    state: State,
}

enum State {
    Pending(AbortOnDropJoinHandle<Result<Vec<IpAddr>, NetworkError>>),
    Done(Result<std::vec::IntoIter<IpAddr>, ErrorCode>),
}

impl LookupStream {
    fn finish(r: Result<Vec<IpAddr>, NetworkError>) -> State {
        State::Done(r.map(Vec::into_iter).map_err(|e| code(&e)))
    }

    /// The result, if resolution has finished.
    fn poll(&mut self) -> Option<&mut Result<std::vec::IntoIter<IpAddr>, ErrorCode>> {
        if let State::Pending(h) = &mut self.state {
            self.state = Self::finish(poll_noop(Pin::new(h))?);
        }
        match &mut self.state {
            State::Done(r) => Some(r),
            State::Pending(_) => None,
        }
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for LookupStream {
    async fn ready(&mut self) {
        if let State::Pending(h) = &mut self.state {
            let r = h.await;
            self.state = Self::finish(r);
        }
    }
}

/// The `wasi:sockets` error code a guest sees for `e`.
fn code(e: &NetworkError) -> ErrorCode {
    match e {
        NetworkError::InvalidName(_) => ErrorCode::InvalidArgument,
        NetworkError::LookupFailed { .. } => ErrorCode::NameUnresolvable,
        NetworkError::LookupTimeout(_) => ErrorCode::TemporaryResolverFailure,
        _ => ErrorCode::AccessDenied,
    }
}

/// Defines the lookup interface over wasmtime-wasi's (call after
/// `wasmtime_wasi::p2::add_to_linker_async`).
pub fn add_to_linker<T: LookupView>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    let r = define(linker);
    linker.allow_shadowing(false);
    r
}

fn define<T: LookupView>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    let mut inst = linker.instance(INTERFACE)?;
    inst.resource(
        "resolve-address-stream",
        ResourceType::host::<LookupStream>(),
        |mut store, rep| {
            let (table, _) = store.data_mut().lookup_view();
            table.delete(Resource::<LookupStream>::new_own(rep))?;
            Ok(())
        },
    )?;
    inst.func_wrap(
        "resolve-addresses",
        |mut store, (network, name): (Resource<Network>, String)| {
            let (table, net) = store.data_mut().lookup_view();
            // The network handle is the capability; check it is one.
            table.get(&network)?;
            let Some(net) = net.cloned() else {
                return Ok((Err(ErrorCode::PermanentResolverFailure),));
            };
            let state = match parse_ip_literal(&name) {
                Some(ip) => State::Done(Ok(vec![ip].into_iter())),
                None => {
                    if let Err(e) = net.precheck_lookup(&name) {
                        return Ok((Err(code(&e)),));
                    }
                    State::Pending(spawn(async move { net.lookup(&name).await }))
                }
            };
            Ok((Ok(table.push(LookupStream { state })?),))
        },
    )?;
    inst.func_wrap(
        "[method]resolve-address-stream.resolve-next-address",
        |mut store, (this,): (Resource<LookupStream>,)| {
            let (table, _) = store.data_mut().lookup_view();
            let stream = table.get_mut(&this)?;
            let r: Result<Option<IpAddress>, ErrorCode> = match stream.poll() {
                None => Err(ErrorCode::WouldBlock),
                Some(Ok(addrs)) => Ok(addrs.next().map(IpAddress::from)),
                Some(Err(e)) => Err(*e),
            };
            Ok((r,))
        },
    )?;
    inst.func_wrap(
        "[method]resolve-address-stream.subscribe",
        |mut store, (this,): (Resource<LookupStream>,)| {
            let (table, _) = store.data_mut().lookup_view();
            let p: Resource<DynPollable> = subscribe(table, this)?;
            Ok((p,))
        },
    )?;
    Ok(())
}
