// express-session + connect-redis, as seed 000's own example configures them, on the
// peers' endpoints. Port and Redis URL come from PORT and BENCH_REDIS_URL.
"use strict";

const crypto = require("crypto");
const express = require("express");
const session = require("express-session");
const { RedisStore } = require("connect-redis");
const { createClient } = require("redis");

const redisClient = createClient({ url: process.env.BENCH_REDIS_URL || "redis://127.0.0.1:6379" });
redisClient.connect().catch((error) => {
  console.error(error);
  process.exit(1);
});

const app = express();
app.set("etag", false);
app.use(
  session({
    store: new RedisStore({ client: redisClient, prefix: "sess:" }),
    name: "sid",
    secret: "benchmark-secret-not-for-production",
    resave: false,
    saveUninitialized: false,
    cookie: { httpOnly: true, secure: false, sameSite: "lax", maxAge: 30 * 60 * 1000 },
    genid: () => crypto.randomBytes(32).toString("hex"),
  }),
);

app.post("/login", (req, res, next) => {
  req.session.regenerate((error) => {
    if (error) return next(error);
    req.session.user = "bench";
    req.session.n = 0;
    res.json({ ok: true });
  });
});

app.get("/read", (req, res) => {
  if (!req.session.user) return res.status(401).json({ error: "no session" });
  res.json({ n: req.session.n });
});

app.post("/incr", (req, res) => {
  if (!req.session.user) return res.status(401).json({ error: "no session" });
  req.session.n += 1;
  res.json({ n: req.session.n });
});

app.listen(Number(process.env.PORT || 3000), "127.0.0.1");
