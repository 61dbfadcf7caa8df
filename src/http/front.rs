//! The service in front of the App on both listeners. A proxy calls `/verify` on every
//! request it forwards, so that one path is answered here from the bare request, without
//! actix-web's routing, request object and extractors (about 1 µs, some 5% of the CPU a
//! check costs behind nginx in `scripts/bench.sh`). Every other request, and a `/verify`
//! spelled with escapes, goes to the App unchanged.

use actix_http::body::BoxBody;
use actix_http::Request;
use actix_web::dev::{AppConfig, Response, Service, ServiceFactory, ServiceResponse};
use actix_web::{web, Error};
use futures_util::future::{Either, LocalBoxFuture, MapOk, Ready, TryFutureExt};

use super::{verify, Live};

/// Wraps the App's factory (`App::into_factory()`).
pub struct Front<A> {
    app: A,
    live: web::Data<Live>,
}

impl<A> Front<A> {
    pub fn new(app: A, live: web::Data<Live>) -> Self {
        Self { app, live }
    }
}

type AppResponse = ServiceResponse<BoxBody>;

impl<A> ServiceFactory<Request> for Front<A>
where
    A: ServiceFactory<
        Request,
        Config = AppConfig,
        Response = AppResponse,
        Error = Error,
        InitError = (),
    >,
    A::Future: 'static,
    A::Service: 'static,
{
    type Response = Response<BoxBody>;
    type Error = Error;
    type Config = AppConfig;
    type Service = FrontService<A::Service>;
    type InitError = ();
    type Future = LocalBoxFuture<'static, Result<Self::Service, ()>>;

    fn new_service(&self, config: AppConfig) -> Self::Future {
        let app = self.app.new_service(config);
        let live = self.live.clone();
        Box::pin(async move {
            Ok(FrontService {
                app: app.await?,
                live,
            })
        })
    }
}

pub struct FrontService<S> {
    app: S,
    live: web::Data<Live>,
}

impl<S> Service<Request> for FrontService<S>
where
    S: Service<Request, Response = AppResponse, Error = Error>,
{
    type Response = Response<BoxBody>;
    type Error = Error;
    #[allow(clippy::type_complexity)]
    type Future = Either<
        Ready<Result<Response<BoxBody>, Error>>,
        MapOk<S::Future, fn(AppResponse) -> Response<BoxBody>>,
    >;

    actix_web::dev::forward_ready!(app);

    fn call(&self, req: Request) -> Self::Future {
        if req.path() == "/verify" {
            let state = self.live.current();
            return Either::Left(futures_util::future::ok(
                verify::answer(&req, &state).into(),
            ));
        }
        Either::Right(self.app.call(req).map_ok(Into::into as fn(_) -> _))
    }
}
