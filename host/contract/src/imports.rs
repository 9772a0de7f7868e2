//! The host side of the contract: one trait serving the imports of every contract version.
//!
//! Each version's bindings module implements its generated `Host` traits by converting to the
//! neutral types of [`crate::types`] and calling this trait, so the host implements each
//! capability once, whatever version a skill was built against.

use std::future::Future;

use crate::types::{
    BodyId, ConnectionInfo, HttpError, HttpRequest, HttpResponse, LogLevel, StateEntry, StateError,
    StreamedResponse,
};

/// What a skill may call. An `Err` of the outer `wasmtime::Result` traps the guest (a broken host
/// rule); the inner result is the guest's to handle.
pub trait SkillImports: Send {
    /// `http.send`: one request, the whole answer.
    fn http_send(
        &mut self,
        request: HttpRequest,
    ) -> impl Future<Output = wasmtime::Result<Result<HttpResponse, HttpError>>> + Send;

    /// `http.send-streaming`: one request, the answer's head now and its body as read.
    fn http_send_streaming(
        &mut self,
        request: HttpRequest,
    ) -> impl Future<Output = wasmtime::Result<Result<StreamedResponse, HttpError>>> + Send;

    /// `incoming-body.read`: up to `max` more bytes of `body`; empty at its end.
    fn body_read(
        &mut self,
        body: BodyId,
        max: u32,
    ) -> impl Future<Output = wasmtime::Result<Result<Vec<u8>, HttpError>>> + Send;

    /// The guest dropped `body`.
    fn body_drop(&mut self, body: BodyId) -> wasmtime::Result<()>;

    /// `connection.info`.
    fn connection_info(&mut self) -> wasmtime::Result<ConnectionInfo>;

    /// `log.log`.
    fn log(&mut self, level: LogLevel, message: String) -> wasmtime::Result<()>;

    /// `emit.emit`: one row as JSON text; an `Err` tells the guest to stop emitting.
    fn emit(
        &mut self,
        row_json: String,
    ) -> impl Future<Output = wasmtime::Result<Result<(), String>>> + Send;

    /// `state.get` (contract 0.2): the committed value of `key` in the invocation's scope.
    fn state_get(
        &mut self,
        key: String,
    ) -> impl Future<Output = wasmtime::Result<Result<Option<StateEntry>, StateError>>> + Send;

    /// `state.set` and `state.delete` (contract 0.2): stages a write (`None`: a delete) of `key`,
    /// applied when the run completes if `key` is then at `expected`.
    fn state_stage(
        &mut self,
        key: String,
        value: Option<Vec<u8>>,
        expected: Option<u64>,
    ) -> impl Future<Output = wasmtime::Result<Result<(), StateError>>> + Send;

    /// `state.lock` (contract 0.2): takes the lock `name` for the rest of the run.
    fn state_lock(
        &mut self,
        name: String,
    ) -> impl Future<Output = wasmtime::Result<Result<(), StateError>>> + Send;
}
