'use strict'
// Stand-in for uWebSockets.js (see package.json). Loading it is a configuration error.
throw new Error('uWebSockets.js stub loaded: configure deepstream with the default node http server, not "uws"')
