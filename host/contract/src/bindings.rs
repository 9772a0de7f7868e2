//! What the bindings of every contract version share, written once.
//!
//! The generated types of two versions are distinct Rust types even where their WIT is the
//! same, so each version needs its own conversions; [`contract_bindings!`] expands the same
//! conversions, import implementations and [`Pre`](crate::v0_1::Pre) in each version's module
//! against that module's `generated` bindings. A version adds what is its own (a new
//! interface, a new error case) beside the expansion.

/// Expands, in a version's module: the bindings of the WIT at `$path` (module `generated`);
/// `add_to_linker`; `Pre` (instantiate, `describe`, `invoke`); the `http`, `connection`, `log`
/// and `emit` imports served through [`crate::imports::SkillImports`]; and the conversions of
/// requests, errors and the skill's description. `$error_arms` are the match arms of the guest
/// error cases the version adds (`E` is its `skill-error`).
macro_rules! contract_bindings {
    ($path:literal, { $($error_arms:tt)* }) => {
        mod generated {
            #![allow(missing_docs)]
            wasmtime::component::bindgen!({
                world: "skill",
                path: $path,
                imports: { default: async | trappable },
                exports: { default: async },
                with: {
                    "skillhost:skill/http.incoming-body": crate::types::BodyHandle,
                },
            });
        }

        use generated::exports::skillhost::skill::guest;
        use generated::skillhost::skill::types as wit_types;
        use generated::skillhost::skill::{connection, emit, http, log};

        /// Links this version's imports, served by `T`'s [`SkillImports`].
        pub fn add_to_linker<T: SkillImports + 'static>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
            generated::Skill::add_to_linker::<T, ImportsOf<T>>(linker, |state| ImportsRef(state))
        }

        /// A component built against this version, its imports resolved.
        pub struct Pre<T: 'static>(generated::SkillPre<T>);

        impl<T: 'static> Clone for Pre<T> {
            fn clone(&self) -> Self {
                Pre(self.0.clone())
            }
        }

        impl<T: Send + 'static> Pre<T> {
            /// Checks that the resolved component has this version's exports.
            pub fn new(pre: InstancePre<T>) -> wasmtime::Result<Self> {
                Ok(Pre(generated::SkillPre::new(pre)?))
            }

            /// Instantiates in `store` and calls `describe`.
            pub async fn describe(&self, store: &mut Store<T>) -> wasmtime::Result<SkillInfo> {
                let skill = self.0.instantiate_async(&mut *store).await?;
                let info = skill.skillhost_skill_guest().call_describe(store).await?;
                Ok(skill_info(info))
            }

            /// Instantiates in `store` and calls `invoke(input)`.
            pub async fn invoke(
                &self,
                store: &mut Store<T>,
                input: &str,
            ) -> wasmtime::Result<Result<String, types::SkillError>> {
                let skill = self.0.instantiate_async(&mut *store).await?;
                let result = skill
                    .skillhost_skill_guest()
                    .call_invoke(store, input)
                    .await?;
                Ok(result.map_err(skill_error))
            }
        }

        struct ImportsOf<T>(PhantomData<T>);

        impl<T: 'static> HasData for ImportsOf<T> {
            type Data<'a> = ImportsRef<'a, T>;
        }

        /// The view of the store's data through which this version's imports are served.
        struct ImportsRef<'a, T>(&'a mut T);

        impl<T: SkillImports> generated::skillhost::skill::types::Host for ImportsRef<'_, T> {}

        impl<T: SkillImports> http::Host for ImportsRef<'_, T> {
            async fn send(
                &mut self,
                request: http::Request,
            ) -> wasmtime::Result<Result<http::Response, http::HttpError>> {
                let result = self.0.http_send(request_of(request)).await?;
                Ok(result
                    .map(|r| http::Response {
                        status: r.status,
                        headers: r.headers,
                        body: r.body,
                    })
                    .map_err(http_error))
            }

            async fn send_streaming(
                &mut self,
                request: http::Request,
            ) -> wasmtime::Result<Result<http::StreamedResponse, http::HttpError>> {
                let result = self.0.http_send_streaming(request_of(request)).await?;
                Ok(result
                    .map(|r| http::StreamedResponse {
                        status: r.status,
                        headers: r.headers,
                        body: Resource::new_own(r.body),
                    })
                    .map_err(http_error))
            }
        }

        impl<T: SkillImports> http::HostIncomingBody for ImportsRef<'_, T> {
            async fn read(
                &mut self,
                body: Resource<types::BodyHandle>,
                max: u32,
            ) -> wasmtime::Result<Result<Vec<u8>, http::HttpError>> {
                let result = self.0.body_read(body.rep(), max).await?;
                Ok(result.map_err(http_error))
            }

            async fn drop(&mut self, body: Resource<types::BodyHandle>) -> wasmtime::Result<()> {
                self.0.body_drop(body.rep())
            }
        }

        impl<T: SkillImports> connection::Host for ImportsRef<'_, T> {
            async fn info(&mut self) -> wasmtime::Result<connection::ConnectionInfo> {
                let info = self.0.connection_info()?;
                Ok(connection::ConnectionInfo {
                    name: info.name,
                    tenant: info.tenant,
                    cloud: info.cloud,
                    api: match info.api {
                        types::ApiFlavour::Defender => connection::ApiFlavour::Defender,
                        types::ApiFlavour::Graph => connection::ApiFlavour::Graph,
                    },
                    services: info.services,
                })
            }
        }

        impl<T: SkillImports> log::Host for ImportsRef<'_, T> {
            async fn log(&mut self, level: log::Level, message: String) -> wasmtime::Result<()> {
                let level = match level {
                    log::Level::Trace => types::LogLevel::Trace,
                    log::Level::Debug => types::LogLevel::Debug,
                    log::Level::Info => types::LogLevel::Info,
                    log::Level::Warn => types::LogLevel::Warn,
                    log::Level::Error => types::LogLevel::Error,
                };
                self.0.log(level, message)
            }
        }

        impl<T: SkillImports> emit::Host for ImportsRef<'_, T> {
            async fn emit(&mut self, row_json: String) -> wasmtime::Result<Result<(), String>> {
                self.0.emit(row_json).await
            }
        }

        fn request_of(request: http::Request) -> types::HttpRequest {
            types::HttpRequest {
                service: request.service,
                method: match request.method {
                    http::Method::Get => types::Method::Get,
                    http::Method::Post => types::Method::Post,
                },
                path_and_query: request.path_and_query,
                headers: request.headers,
                body: request.body,
            }
        }

        fn http_error(error: types::HttpError) -> http::HttpError {
            match error {
                types::HttpError::Denied(why) => http::HttpError::Denied(why),
                types::HttpError::Unauthorized(why) => http::HttpError::Unauthorized(why),
                types::HttpError::Timeout => http::HttpError::Timeout,
                types::HttpError::TooLarge(cap) => http::HttpError::TooLarge(cap),
                types::HttpError::Transport(why) => http::HttpError::Transport(why),
            }
        }

        fn skill_error(error: guest::SkillError) -> types::SkillError {
            use guest::SkillError as E;
            match error {
                E::InvalidInput(m) => types::SkillError::InvalidInput(m),
                E::NotFound(m) => types::SkillError::NotFound(m),
                E::Denied(m) => types::SkillError::Denied(m),
                E::Unauthorized(m) => types::SkillError::Unauthorized(m),
                E::Forbidden(m) => types::SkillError::Forbidden(m),
                E::Throttled(m) => types::SkillError::Throttled(m),
                E::Upstream(u) => types::SkillError::Upstream(types::UpstreamError {
                    status: u.status,
                    code: u.code,
                    message: u.message,
                }),
                E::Timeout(m) => types::SkillError::Timeout(m),
                E::Internal(m) => types::SkillError::Internal(m),
                $($error_arms)*
            }
        }

        fn skill_info(info: guest::SkillInfo) -> SkillInfo {
            SkillInfo {
                id: info.id,
                name: info.name,
                version: info.version,
                description: info.description,
                parameters: info
                    .parameters
                    .into_iter()
                    .map(|p| ParamSpec {
                        name: p.name,
                        description: p.description,
                        kind: match p.kind {
                            wit_types::ParamKind::Text => ParamKind::Text,
                            wit_types::ParamKind::Integer => ParamKind::Integer,
                            wit_types::ParamKind::Boolean => ParamKind::Boolean,
                            wit_types::ParamKind::Timestamp => ParamKind::Timestamp,
                        },
                        required: p.required,
                        default_value: p.default_value,
                        allowed_values: p.allowed_values,
                        minimum: p.minimum,
                        maximum: p.maximum,
                    })
                    .collect(),
                services: info.services,
                output: match info.output {
                    wit_types::OutputKind::Object => OutputKind::Object,
                    wit_types::OutputKind::Dataset => OutputKind::Dataset,
                },
                columns: info.columns,
                output_description: info.output_description,
            }
        }
    };
}

pub(crate) use contract_bindings;
