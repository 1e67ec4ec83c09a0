// An Express site signing users in with express-session, written from the "User login"
// example of express-session's README (the form moved to GET /login, and the user name
// and password checked), for sessionward's audit tests.
//
//   node server.js PORT   (the test account from SESSIONWARD_TARGET_USER / _PASSWORD)
//
// express-session's defaults are kept: the cookie connect.sid (HttpOnly, Path=/, no Secure,
// no SameSite, a browser-session cookie), the MemoryStore, saveUninitialized: every visitor
// gets a session. One step of the README is left out on purpose: the login does not call
// req.session.regenerate(), as many apps written from the middleware's options alone don't,
// so the pre-login session ID stays signed in (session fixation). The logout is the
// README's: clear the user, save, regenerate.
'use strict'

const crypto = require('node:crypto')
const express = require('express')
const session = require('express-session')

const port = Number(process.argv[2])
const username = process.env.SESSIONWARD_TARGET_USER
const password = process.env.SESSIONWARD_TARGET_PASSWORD
if (!port || !username || !password) {
  console.error('usage: SESSIONWARD_TARGET_USER=… SESSIONWARD_TARGET_PASSWORD=… node server.js PORT')
  process.exit(2)
}

const app = express()

app.use(session({
  secret: crypto.randomBytes(32).toString('hex'),
  resave: false,
  saveUninitialized: true
}))

function escapeHtml (text) {
  return String(text).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`)
}

function sameText (given, expected) {
  const a = Buffer.from(String(given ?? ''))
  const b = Buffer.from(expected)
  return a.length === b.length && crypto.timingSafeEqual(a, b)
}

// middleware to test if authenticated
function isAuthenticated (req, res, next) {
  if (req.session.user) next()
  else next('route')
}

app.get('/', isAuthenticated, function (req, res) {
  res.send('hello, ' + escapeHtml(req.session.user) + '!' +
    ' <a href="/logout">Logout</a>')
})

app.get('/', function (req, res) {
  res.redirect('/login')
})

app.get('/login', function (req, res) {
  res.send('<form action="/login" method="post">' +
    'Username: <input name="user"><br>' +
    'Password: <input name="pass" type="password"><br>' +
    '<input type="submit" value="Login"></form>')
})

app.post('/login', express.urlencoded({ extended: false }), function (req, res, next) {
  if (!sameText(req.body.user, username) || !sameText(req.body.pass, password)) {
    return res.redirect('/login')
  }
  // No req.session.regenerate() here: the planted weakness (see the top of the file).
  req.session.user = req.body.user
  req.session.save(function (err) {
    if (err) return next(err)
    res.redirect('/')
  })
})

app.get('/logout', function (req, res, next) {
  // clear the user from the session object and save, then regenerate
  req.session.user = null
  req.session.save(function (err) {
    if (err) return next(err)
    req.session.regenerate(function (err) {
      if (err) return next(err)
      res.redirect('/')
    })
  })
})

app.listen(port, '127.0.0.1', function () {
  console.log(`listening on http://127.0.0.1:${port}`)
})
