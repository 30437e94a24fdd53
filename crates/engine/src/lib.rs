//! berthd's services, independent of the HTTP API that exposes them.
