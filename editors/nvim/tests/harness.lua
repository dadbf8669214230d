-- What the Neovim test drivers (complete.lua, settings.lua, late_answer.lua) share.
-- A driver's steps run as one coroutine on Neovim's main loop; wait_for() polls
-- from that loop, so typed keys and LSP messages are processed while it waits.
-- The driver's result table is written as JSON to $SLM_NVIM_RESULT once, when the
-- steps end, fail or the watchdog fires, and Neovim quits.
--
-- A driver loads it from beside itself and hands it its steps:
--   local here = vim.fs.dirname(debug.getinfo(1, 'S').source:sub(2))
--   local h = dofile(vim.fs.joinpath(here, 'harness.lua')).new(result)
--   h.buf = ...                   -- the buffer under test, once it is open
--   h.run(main, watchdog_ms)

local api = vim.api
local M = {}

--- A harness that writes `result` (a table the driver fills).
--- opts.stay: after a success, keep Neovim open (the result file is the signal).
--- opts.poll_ms: how often wait_for() looks (default 20).
function M.new(result, opts)
  opts = opts or {}
  local poll_ms = opts.poll_ms or 20
  local started = vim.uv.hrtime()
  local co
  result.log = result.log or {}
  local h = {
    buf = nil, -- the buffer under test: ghost_text() reads it, finish() records its lines
    on_request = nil, -- called with each observed request's record right after it is sent
  }

  --- Milliseconds since the harness was made.
  function h.now()
    return math.floor((vim.uv.hrtime() - started) / 1e6)
  end

  function h.log(msg)
    table.insert(result.log, ('%6d ms  %s'):format(h.now(), msg))
  end

  --- Write the result (the first call only) and quit, unless opts.stay and no error.
  function h.finish(err)
    if result.finished then
      return
    end
    result.finished = true
    result.error = err
    result.nvim = tostring(vim.version())
    result.native_inline_completion = vim.lsp.inline_completion ~= nil
    if h.buf and api.nvim_buf_is_valid(h.buf) then
      result.lines = api.nvim_buf_get_lines(h.buf, 0, -1, false)
    end
    local f = assert(io.open(vim.env.SLM_NVIM_RESULT, 'w'))
    f:write(vim.json.encode(result))
    f:close()
    if err or not opts.stay then
      vim.schedule(function()
        vim.cmd('qall!')
      end)
    end
  end

  local function resume()
    local ok, err = coroutine.resume(co)
    if not ok then
      h.finish(debug.traceback(co, err))
    end
  end

  --- Poll `cond` from the main loop until it returns a true value, which is returned;
  --- an error after `ms`.
  function h.wait_for(what, ms, cond)
    local deadline = h.now() + ms
    while true do
      local value = cond()
      if value then
        h.log(what)
        return value
      end
      if h.now() > deadline then
        error(('timed out after %d ms waiting for %s'):format(ms, what), 0)
      end
      vim.defer_fn(resume, poll_ms)
      coroutine.yield()
    end
  end

  --- Type `keys` (with <...> notation), `mode` as nvim_feedkeys takes it ('nt', 'mt').
  function h.feed(keys, mode)
    api.nvim_feedkeys(api.nvim_replace_termcodes(keys, true, false, true), mode, false)
  end

  --- Text of every virtual-text extmark in h.buf (lines below as `\n...`), or nil when there is none.
  function h.ghost_text()
    local parts = {}
    for _, mark in ipairs(api.nvim_buf_get_extmarks(h.buf, -1, 0, -1, { details = true })) do
      local d = mark[4]
      for _, chunk in ipairs(d.virt_text or {}) do
        parts[#parts + 1] = chunk[1]
      end
      for _, virt_line in ipairs(d.virt_lines or {}) do
        local text = {}
        for _, chunk in ipairs(virt_line) do
          text[#text + 1] = chunk[1]
        end
        parts[#parts + 1] = '\n' .. table.concat(text)
      end
    end
    local text = table.concat(parts)
    return vim.trim(text) ~= '' and text or nil
  end

  --- The slm_lsp client attached to h.buf, if any.
  function h.client()
    return vim.lsp.get_clients({ bufnr = h.buf, name = 'slm_lsp' })[1]
  end

  --- Wait until the server has loaded (slm.status); its status. An error if it reports one.
  function h.wait_for_server(ms)
    local slm = require('slm_lsp')
    local status = h.wait_for('server ready', ms, function()
      local s = slm.status(h.buf)
      return s and s.state ~= 'loading' and s
    end)
    if status.state == 'error' then
      error('server reports an error: ' .. tostring(status.message), 0)
    end
    return status
  end

  --- Append to `requests` every textDocument/inlineCompletion `client` sends (whoever
  --- sends it: the native client or the fallback), with its answer and what was on
  --- screen just before and just after the editor handled that answer. `answered`
  --- is set once the editor's handler has run.
  function h.observe(client, requests)
    local request = client.request
    client.request = function(self, method, params, handler, bufnr) ---@diagnostic disable-line: duplicate-set-field
      if method ~= 'textDocument/inlineCompletion' or type(handler) ~= 'function' then
        return request(self, method, params, handler, bufnr)
      end
      local asked = vim.uri_to_bufnr(params.textDocument.uri)
      local entry = {
        sent_ms = h.now(),
        buf = asked,
        line = params.position.line,
        character = params.position.character,
        tick = api.nvim_buf_get_changedtick(asked),
      }
      table.insert(requests, entry)
      local ok, id = request(self, method, params, function(err, answer, ctx)
        local items = type(answer) == 'table' and (answer.items or answer) or {}
        entry.answered_ms = h.now()
        entry.error = err and err.message or nil
        entry.items = #items
        local text = items[1] and items[1].insertText
        entry.text = type(text) == 'table' and text.value or text
        entry.tick_at_answer = api.nvim_buf_get_changedtick(asked)
        entry.cursor_at_answer = api.nvim_win_get_cursor(0)
        entry.ghost_before = h.ghost_text()
        handler(err, answer, ctx)
        entry.ghost_after = h.ghost_text()
        entry.answered = true
      end, bufnr)
      entry.id = id
      if h.on_request then
        h.on_request(entry)
      end
      return ok, id
    end
  end

  --- A list that every vim.notify message from now on is appended to.
  function h.notifications()
    local messages = {}
    local notify = vim.notify
    vim.notify = function(msg, ...) ---@diagnostic disable-line: duplicate-set-field
      table.insert(messages, msg)
      return notify(msg, ...)
    end
    return messages
  end

  --- Run `main` as the driver's steps; the watchdog finishes a stuck run after `watchdog_ms`.
  function h.run(main, watchdog_ms)
    co = coroutine.create(main)
    vim.defer_fn(function()
      h.finish('watchdog: gave up after ' .. h.now() .. ' ms')
    end, watchdog_ms)
    vim.schedule(resume)
  end

  return h
end

return M
