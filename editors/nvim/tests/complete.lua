-- Drives a real Neovim through one completion, as a person would:
-- open a file, `A<CR>` after a line (the first by default), wait for the ghost text, press the
-- accept key (through the plugin's own mapping), and record what happened.
-- Nothing asks for the suggestion explicitly: it comes from the editor's automatic
-- requests, however long the model takes (bounded by SLM_NVIM_TIMEOUT).
-- Then a late answer: `A<CR>` after a new `def`, and as soon as the request for that
-- position goes out, type on; the answer that arrives for the old position must not
-- show up. Every textDocument/inlineCompletion and its answer are in result.requests.
--
-- Run with the plugin on the runtimepath, e.g.
--   nvim --headless --clean --cmd 'set rtp^=editors/nvim' -c 'luafile editors/nvim/tests/complete.lua'
-- Environment:
--   SLM_NVIM_FILE      file to open (required)
--   SLM_NVIM_RESULT    JSON written here at the end (required)
--   SLM_NVIM_CMD       server command as a JSON list (default ["slm-lsp"])
--   SLM_NVIM_INLINE    'auto' | 'native' | 'fallback' (default 'auto')
--   SLM_NVIM_SETTINGS  server settings as a JSON object (default {})
--   SLM_NVIM_TIMEOUT   ms to wait for the server and the suggestion (default 60000)
--   SLM_NVIM_LINE      the line to open a new line below (default 1)
--   SLM_NVIM_STAY      '1': stop once the ghost text shows and keep Neovim open
--                      (for screenshots); the result file is the signal

local api = vim.api
local env = vim.env
local timeout = tonumber(env.SLM_NVIM_TIMEOUT or '') or 60000
local line = tonumber(env.SLM_NVIM_LINE or '') or 1
local started = vim.uv.hrtime()
local result = { log = {}, inline = env.SLM_NVIM_INLINE or 'auto' }
local buf, co

local function now()
  return math.floor((vim.uv.hrtime() - started) / 1e6)
end

local function log(msg)
  table.insert(result.log, ('%6d ms  %s'):format(now(), msg))
end

local function finish(err)
  if result.finished then
    return
  end
  result.finished = true
  result.error = err
  result.nvim = tostring(vim.version())
  result.native_inline_completion = vim.lsp.inline_completion ~= nil
  if buf and api.nvim_buf_is_valid(buf) then
    result.lines = api.nvim_buf_get_lines(buf, 0, -1, false)
  end
  local f = assert(io.open(env.SLM_NVIM_RESULT, 'w'))
  f:write(vim.json.encode(result))
  f:close()
  if err or env.SLM_NVIM_STAY ~= '1' then
    vim.schedule(function()
      vim.cmd('qall!')
    end)
  end
end

local function resume()
  local ok, err = coroutine.resume(co)
  if not ok then
    finish(debug.traceback(co, err))
  end
end

--- Poll `cond` from the main loop (so typed keys get processed meanwhile).
local function wait_for(what, ms, cond)
  local deadline = now() + ms
  while true do
    local value = cond()
    if value then
      log(what)
      return value
    end
    if now() > deadline then
      error(('timed out after %d ms waiting for %s'):format(ms, what), 0)
    end
    vim.defer_fn(resume, 20)
    coroutine.yield()
  end
end

local function feed(keys, mode)
  api.nvim_feedkeys(api.nvim_replace_termcodes(keys, true, false, true), mode, false)
end

--- Text of every virtual-text extmark in the buffer, or nil when there is none.
local function ghost_text()
  local parts = {}
  for _, mark in ipairs(api.nvim_buf_get_extmarks(buf, -1, 0, -1, { details = true })) do
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

--- Called with each inlineCompletion request's record right after it is sent.
local on_request = nil
--- The slm_lsp client being observed.
local observed

--- Record every textDocument/inlineCompletion `client` sends (whoever sends it: the
--- native client or the fallback) and its answer, with what was on screen just
--- before and just after the editor handled that answer.
local function observe(client)
  observed = client
  result.requests = result.requests or {}
  local request = client.request
  client.request = function(self, method, params, handler, bufnr) ---@diagnostic disable-line: duplicate-set-field
    if method ~= 'textDocument/inlineCompletion' or type(handler) ~= 'function' then
      return request(self, method, params, handler, bufnr)
    end
    local entry = {
      sent_ms = now(),
      line = params.position.line,
      character = params.position.character,
      tick = api.nvim_buf_get_changedtick(buf),
    }
    table.insert(result.requests, entry)
    local ok, id = request(self, method, params, function(err, answer, ctx)
      local items = type(answer) == 'table' and (answer.items or answer) or {}
      entry.answered_ms = now()
      entry.error = err and err.message or nil
      entry.items = #items
      local text = items[1] and items[1].insertText
      entry.text = type(text) == 'table' and text.value or text
      entry.tick_at_answer = api.nvim_buf_get_changedtick(buf)
      entry.cursor_at_answer = api.nvim_win_get_cursor(0)
      entry.ghost_before = ghost_text()
      handler(err, answer, ctx)
      entry.ghost_after = ghost_text()
    end, bufnr)
    entry.id = id
    if on_request then
      on_request(entry)
    end
    return ok, id
  end
end

--- A late answer for a position the user has left: `A<CR>` after a new `def`, and
--- the moment the request for the new line goes out, type on. Records that request.
local function type_past_a_request()
  local last = api.nvim_buf_line_count(buf)
  api.nvim_buf_set_lines(buf, last, last, true, { '', 'def mul(a, b):' })
  api.nvim_win_set_cursor(0, { last + 2, 0 })
  local target = last + 2 -- 0-based row of the new line below the `def`
  local first
  on_request = function(entry)
    if not first and entry.line == target then
      first = entry
      on_request = nil
      feed('pass', 'nt') -- typed before the answer can be there
    end
  end
  feed('A<CR>', 'nt')
  wait_for('request for the new line', timeout, function()
    return first
  end)
  wait_for('typed on past it', 5000, function()
    return vim.trim(api.nvim_buf_get_lines(buf, target, target + 1, true)[1]) == 'pass'
  end)
  -- Answered, or cancelled: Neovim never hands a cancelled request's ack to the handler.
  wait_for('the answer for the old position, or its cancellation', timeout, function()
    return first.answered_ms or observed.requests[first.id] == nil
  end)
  first.settled_ms = now()
  first.cancelled = first.answered_ms == nil
  feed('<Esc>', 'nt')
  wait_for('normal mode', 5000, function()
    return api.nvim_get_mode().mode == 'n'
  end)
  return first
end

local function main()
  local attached = false
  api.nvim_create_autocmd('LspAttach', {
    callback = function(args)
      local client = vim.lsp.get_client_by_id(args.data.client_id)
      if client ~= nil and client.name == 'slm_lsp' and not attached then
        attached = true
        observe(client)
      end
    end,
  })
  local slm = require('slm_lsp')
  slm.setup({
    cmd = vim.json.decode(env.SLM_NVIM_CMD or '["slm-lsp"]'),
    inline = result.inline,
    settings = vim.json.decode(env.SLM_NVIM_SETTINGS or '{}'),
  })
  result.mode = slm.inline_mode()
  local file = assert(env.SLM_NVIM_FILE, 'SLM_NVIM_FILE is not set')
  vim.cmd.edit(vim.fn.fnameescape(file))
  buf = api.nvim_get_current_buf()
  log('opened ' .. vim.bo[buf].filetype .. ' file, ghost text: ' .. result.mode)

  wait_for('client attached', timeout, function()
    return attached
  end)
  local status = wait_for('server ready', timeout, function()
    local s = slm.status(buf)
    return s and s.state ~= 'loading' and s
  end)
  result.status = status
  if status.state == 'error' then
    error('server reports an error: ' .. tostring(status.message), 0)
  end

  api.nvim_win_set_cursor(0, { line, 0 })
  -- <Tab> before any suggestion can have arrived (they are asked for only after
  -- a debounce): the mapping must act as a plain <Tab>.
  feed('A<CR><Tab>', 'mt')
  wait_for('insert mode on the new line', 5000, function()
    return api.nvim_get_mode().mode == 'i' and api.nvim_win_get_cursor(0)[1] == line + 1
  end)
  result.tab_without_suggestion = api.nvim_buf_get_lines(buf, line, line + 1, true)[1]
  feed('<BS>', 'nt')
  wait_for('back at the indent', 5000, function()
    return api.nvim_buf_get_lines(buf, line, line + 1, true)[1] ~= result.tab_without_suggestion
  end)
  result.indent = api.nvim_buf_get_lines(buf, line, line + 1, true)[1]

  result.ghost = wait_for('ghost text', timeout, ghost_text)
  result.ghost_ms = now()
  for _, entry in ipairs(result.requests) do
    if entry.ghost_after and not entry.ghost_before then
      result.shown_by = entry -- the request whose answer put it on screen
    end
  end
  if env.SLM_NVIM_STAY == '1' then
    return finish(nil)
  end

  local before = api.nvim_buf_get_lines(buf, 0, -1, false)
  feed('<Tab>', 'mt') -- remap: goes through the plugin's insert-mode mapping
  wait_for('suggestion accepted', 5000, function()
    return not vim.deep_equal(before, api.nvim_buf_get_lines(buf, 0, -1, false))
  end)
  feed('<Esc>', 'nt')
  wait_for('normal mode', 5000, function()
    return api.nvim_get_mode().mode == 'n'
  end)
  result.accepted = api.nvim_buf_get_lines(buf, 0, -1, false)

  result.stale = type_past_a_request()

  -- The user commands, as typed; their answers arrive through vim.notify.
  result.messages = {}
  local notify = vim.notify
  vim.notify = function(msg, ...) ---@diagnostic disable-line: duplicate-set-field
    table.insert(result.messages, msg)
    return notify(msg, ...)
  end
  local first = vim.lsp.get_clients({ bufnr = buf, name = 'slm_lsp' })[1]
  for _, command in ipairs({ 'SlmToggle', 'SlmToggle', 'SlmStatus', 'SlmRestart' }) do
    local count = #result.messages
    vim.cmd(command)
    wait_for(':' .. command, 30000, function()
      return #result.messages > count
    end)
  end
  wait_for('client attached again', timeout, function()
    local client = vim.lsp.get_clients({ bufnr = buf, name = 'slm_lsp' })[1]
    return client and client.id ~= first.id and client.initialized
  end)
  result.restarted = first:is_stopped()
  finish(nil)
end

co = coroutine.create(main)
-- A watchdog, so a stuck run still reports and exits.
vim.defer_fn(function()
  finish('watchdog: gave up after ' .. now() .. ' ms')
end, 3 * timeout + 30000)
vim.schedule(resume)
