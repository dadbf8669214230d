-- Settings precedence in a real Neovim with the real server: what the plugin
-- sends, whether a project's `.slm-lsp.json` (or the user's setting over it)
-- decides if a file gets ghost text, and whether a `:SlmToggle` survives
-- settings changes that do not touch `completion.enable`.
--
-- For each file in SLM_NVIM_FILES: open it, `A<CR>` after line 1, and wait until
-- the newest textDocument/inlineCompletion is answered for the cursor as it is
-- (nothing newer asked, nothing typed since); record its items and the ghost text.
-- With SLM_NVIM_TOGGLE=1, then: :SlmToggle, an unrelated require('slm_lsp').configure(),
-- :SlmRestart, asking the server for its state (slm.status) after each step.
--
--   nvim --headless --clean --cmd 'set rtp^=editors/nvim' -c 'luafile editors/nvim/tests/settings.lua'
-- Environment:
--   SLM_NVIM_FILES     JSON list of files to open (required)
--   SLM_NVIM_RESULT    JSON written here at the end (required)
--   SLM_NVIM_CMD       server command as a JSON list (default ["slm-lsp"])
--   SLM_NVIM_SETTINGS  `settings` for setup() as a JSON object; unset: none given, as a user has it
--   SLM_NVIM_TOGGLE    '1': the toggle steps after the files
--   SLM_NVIM_TIMEOUT   ms to wait for the server and each answer (default 60000)

local api = vim.api
local env = vim.env
local timeout = tonumber(env.SLM_NVIM_TIMEOUT or '') or 60000
local started = vim.uv.hrtime()
local result = { log = {}, files = {} }
local requests = {}
local buf, co, client

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
  result.finished, result.error = true, err
  local f = assert(io.open(env.SLM_NVIM_RESULT, 'w'))
  f:write(vim.json.encode(result))
  f:close()
  vim.schedule(function()
    vim.cmd('qall!')
  end)
end

local function resume()
  local ok, err = coroutine.resume(co)
  if not ok then
    finish(debug.traceback(co, err))
  end
end

--- Poll `cond` from the main loop (so keys and messages get processed meanwhile).
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

local function feed(keys)
  api.nvim_feedkeys(api.nvim_replace_termcodes(keys, true, false, true), 'nt', false)
end

--- Text of every virtual-text extmark in the buffer, or nil when there is none.
local function ghost_text()
  local parts = {}
  for _, mark in ipairs(api.nvim_buf_get_extmarks(buf, -1, 0, -1, { details = true })) do
    for _, chunk in ipairs(mark[4].virt_text or {}) do
      parts[#parts + 1] = chunk[1]
    end
  end
  local text = table.concat(parts)
  return vim.trim(text) ~= '' and text or nil
end

--- Record every textDocument/inlineCompletion `c` sends (native client or fallback) and its answer.
local function observe(c)
  local request = c.request
  c.request = function(self, method, params, handler, bufnr) ---@diagnostic disable-line: duplicate-set-field
    if method ~= 'textDocument/inlineCompletion' or type(handler) ~= 'function' then
      return request(self, method, params, handler, bufnr)
    end
    local asked = vim.uri_to_bufnr(params.textDocument.uri)
    local entry = { buf = asked, line = params.position.line, tick = api.nvim_buf_get_changedtick(asked) }
    table.insert(requests, entry)
    return request(self, method, params, function(err, answer, ctx)
      local items = type(answer) == 'table' and (answer.items or answer) or {}
      local text = items[1] and items[1].insertText
      entry.items, entry.text = #items, type(text) == 'table' and text.value or text
      handler(err, answer, ctx)
      entry.answered = true
    end, bufnr)
  end
end

--- The newest request, once it is answered for the cursor line and text as they are now.
local function settled()
  local last = requests[#requests]
  local row = api.nvim_win_get_cursor(0)[1] - 1
  local current = last and last.buf == buf and last.line == row and last.tick == api.nvim_buf_get_changedtick(buf)
  return current and last.answered and last
end

--- Ask the server for its state (a request: answered after every message sent before it).
local function server_state()
  local c = vim.lsp.get_clients({ bufnr = buf, name = 'slm_lsp' })[1]
  local answer
  c:request('workspace/executeCommand', { command = 'slm.status', arguments = {} }, function(err, res)
    answer = err and { state = 'error: ' .. err.message } or res
  end, buf)
  return wait_for('slm.status', 30000, function()
    return answer
  end).state
end

local function try_file(file)
  vim.cmd.edit(vim.fn.fnameescape(file))
  buf = api.nvim_get_current_buf()
  wait_for('attached to ' .. file, timeout, function()
    return vim.lsp.get_clients({ bufnr = buf, name = 'slm_lsp' })[1]
  end)
  api.nvim_win_set_cursor(0, { 1, 0 })
  feed('A<CR>')
  local answer = wait_for('settled answer in ' .. file, timeout, settled)
  if answer.items > 0 then
    wait_for('ghost text', 5000, ghost_text)
  end
  table.insert(result.files, { file = file, items = answer.items, text = answer.text, ghost = ghost_text() })
  feed('<Esc>u')
  wait_for('normal mode, undone', 5000, function()
    return api.nvim_get_mode().mode == 'n' and api.nvim_buf_line_count(buf) == 1
  end)
end

local function toggle_steps()
  local slm = require('slm_lsp')
  local steps = {}
  result.toggle = steps
  steps.before = server_state()
  local notified = {}
  local notify = vim.notify
  vim.notify = function(msg, ...) ---@diagnostic disable-line: duplicate-set-field
    table.insert(notified, msg)
    return notify(msg, ...)
  end
  vim.cmd('SlmToggle')
  wait_for(':SlmToggle', 30000, function()
    return #notified > 0
  end)
  steps.toggled = server_state()
  slm.configure({ completion = { maxLines = 4 } }) -- unrelated to enabling
  steps.after_configure = server_state()
  local first = vim.lsp.get_clients({ bufnr = buf, name = 'slm_lsp' })[1]
  vim.cmd('SlmRestart')
  wait_for('a new client, ready', timeout, function()
    local c = vim.lsp.get_clients({ bufnr = buf, name = 'slm_lsp' })[1]
    local s = c and c.id ~= first.id and c.initialized and slm.status(buf)
    return s and s.state ~= 'loading'
  end)
  steps.after_restart = server_state()
end

local function main()
  api.nvim_create_autocmd('LspAttach', {
    callback = function(args)
      local c = vim.lsp.get_client_by_id(args.data.client_id)
      if c and c.name == 'slm_lsp' and not client then
        client = c
        observe(c)
        result.init_options = c.config.init_options
        result.settings = c.settings
      end
    end,
  })
  local slm = require('slm_lsp')
  local opts = { cmd = vim.json.decode(env.SLM_NVIM_CMD or '["slm-lsp"]') }
  if env.SLM_NVIM_SETTINGS then
    opts.settings = vim.json.decode(env.SLM_NVIM_SETTINGS)
  end
  slm.setup(opts)
  result.mode = slm.inline_mode()
  local files = vim.json.decode((assert(env.SLM_NVIM_FILES, 'SLM_NVIM_FILES is not set')))
  vim.cmd.edit(vim.fn.fnameescape(files[1]))
  buf = api.nvim_get_current_buf()
  local status = wait_for('server ready', timeout, function()
    local s = slm.status(buf)
    return s and s.state ~= 'loading' and s
  end)
  if status.state == 'error' then
    error('server reports an error: ' .. tostring(status.message), 0)
  end
  for _, file in ipairs(files) do
    try_file(file)
  end
  if env.SLM_NVIM_TOGGLE == '1' then
    toggle_steps()
  end
  finish(nil)
end

co = coroutine.create(main)
vim.defer_fn(function()
  finish('watchdog: gave up after ' .. now() .. ' ms')
end, 4 * timeout + 30000)
vim.schedule(resume)
