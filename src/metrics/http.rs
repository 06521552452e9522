//! The `/metrics` and `/health/live` listener (actix-web, one worker), separate from the
//! appservice listener so it can stay on loopback.

use std::future::Future;

use actix_web::{App, HttpResponse, HttpServer, web};
use prometheus::TEXT_FORMAT;

use super::Metrics;

async fn metrics_page(metrics: web::Data<Metrics>) -> HttpResponse {
    HttpResponse::Ok().content_type(TEXT_FORMAT).body(metrics.encode())
}

async fn live() -> HttpResponse {
    HttpResponse::Ok().content_type("text/plain; charset=utf-8").body("ok\n")
}

/// Serves `GET /metrics` (text exposition, `text/plain; version=0.0.4`) and `GET /health/live`
/// (200 `ok`) on the already-bound `listener` until `shutdown` resolves, then stops gracefully
/// (in-flight scrapes finish, at most 5 s). Runs its own
/// worker thread; may be awaited on an actix system or a plain tokio runtime. Every other path or
/// method gets 404. Errors only if the listener cannot be used or the server fails.
pub async fn serve(
    listener: std::net::TcpListener,
    metrics: Metrics,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let data = web::Data::new(metrics);
    let server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .route("/metrics", web::get().to(metrics_page))
            .route("/health/live", web::get().to(live))
    })
    .workers(1)
    .disable_signals()
    .shutdown_timeout(5)
    .listen(listener)?
    .run();
    run_until(server, shutdown).await
}

/// Runs an actix-web `server` until it ends or `shutdown` resolves, then stops it gracefully
/// (in-flight requests finish within the server's shutdown timeout). Shared by every listener
/// of the process.
pub async fn run_until(
    server: actix_web::dev::Server,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let handle = server.handle();
    let mut server = std::pin::pin!(server);
    tokio::select! {
        result = &mut server => result,
        () = shutdown => {
            // The server future itself answers the stop command, so it must be polled meanwhile.
            let ((), result) = tokio::join!(handle.stop(true), server);
            result
        }
    }
}
