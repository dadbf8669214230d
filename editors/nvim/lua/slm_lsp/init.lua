--- slm_lsp: Neovim client for slm-lsp, a local code-completion language server.
---
--- Thin by design: vim.lsp.config/enable start the server, Neovim's own
--- vim.lsp.inline_completion (0.12+) shows the ghost text (slm_lsp.ghost on
--- 0.11), and the commands below are LSP requests. See `:help slm_lsp`.
local config = require('slm_lsp.config')

local M = {}

M.name = 'slm_lsp'

local api = vim.api
local augroup = api.nvim_create_augroup('slm_lsp', { clear = true })

--- Last `slm/status` per client id.
--- @type table<integer, table>
local statuses = {}

local function notify(msg, level)
  vim.notify('slm-lsp: ' .. msg, level or vim.log.levels.INFO)
end

local function has_native()
  return vim.lsp.inline_completion ~= nil and vim.lsp.inline_completion.enable ~= nil
end

--- Which ghost-text client serves this session: 'native', 'fallback' or 'off'.
--- @return 'native'|'fallback'|'off'
function M.inline_mode()
  local mode = config.options.inline
  if mode == 'auto' then
    return has_native() and 'native' or 'fallback'
  end
  if mode == 'native' and not has_native() then
    return 'fallback'
  end
  return mode
end

--- Accept the suggestion shown in `bufnr`; false when none is shown.
--- @param bufnr? integer
--- @return boolean
function M.accept(bufnr)
  bufnr = bufnr or 0
  local mode = M.inline_mode()
  if mode == 'native' then
    return vim.lsp.inline_completion.get({ bufnr = bufnr })
  elseif mode == 'fallback' then
    return require('slm_lsp.ghost').accept(bufnr)
  end
  return false
end

local ACCEPT_DESC = 'slm-lsp: accept suggestion'

--- What `lhs` did before we mapped it, as a function returning keys: the mapping
--- it had (e.g. Neovim's default <Tab>, which jumps in a snippet) or the key.
local function previous(bufnr, lhs)
  local function maparg()
    return api.nvim_buf_call(bufnr, function()
      return vim.fn.maparg(lhs, 'i', false, true)
    end)
  end
  local prev = maparg()
  if prev.desc == ACCEPT_DESC and prev.buffer == 1 then -- ours, from an earlier attach
    vim.keymap.del('i', lhs, { buffer = bufnr })
    prev = maparg()
  end
  if vim.tbl_isempty(prev) or prev.desc == ACCEPT_DESC then
    return function()
      return lhs
    end
  end
  if prev.callback then
    return function()
      local keys = prev.callback()
      return prev.expr == 1 and keys or ''
    end
  end
  return function()
    return prev.expr == 1 and api.nvim_eval(prev.rhs) or prev.rhs
  end
end

local function map_accept(bufnr, lhs)
  local fallback = previous(bufnr, lhs)
  vim.keymap.set('i', lhs, function()
    if M.accept(bufnr) then
      return ''
    end
    return fallback()
  end, { expr = true, buffer = bufnr, silent = true, desc = ACCEPT_DESC })
end

local INLINE = 'textDocument/inlineCompletion'

--- Clients whose late inline answers are checked (weak keys: a stopped client goes).
--- @type table<vim.lsp.Client, true>
local checked = setmetatable({}, { __mode = 'k' })

--- Neovim 0.12's vim.lsp.inline_completion shows every answer it gets, also one
--- for a position the user has typed past or left: it does not compare the
--- buffer or the cursor when the answer arrives, and the server hears of an edit
--- up to 150 ms late (didChange is debounced), of a cursor move only with the
--- next request. The server answers when the model is done, so answers come late
--- by design: drop one whose buffer or cursor has moved on since its request,
--- as the fallback (ghost.lua) does. Only `client`'s own requests pass here.
--- @param client vim.lsp.Client
local function drop_stale_answers(client)
  if checked[client] then
    return
  end
  checked[client] = true
  local request = client.request
  client.request = function(self, method, params, handler, bufnr) ---@diagnostic disable-line: duplicate-set-field
    if method ~= INLINE or type(handler) ~= 'function' or not (params and params.position) then
      return request(self, method, params, handler, bufnr)
    end
    local buf = vim.uri_to_bufnr(params.textDocument.uri)
    local tick = api.nvim_buf_get_changedtick(buf)
    local asked = params.position
    return request(self, method, params, function(err, result, ctx)
      if api.nvim_buf_get_changedtick(buf) ~= tick or api.nvim_get_current_buf() ~= buf then
        return
      end
      local now = vim.lsp.util.make_position_params(0, self.offset_encoding).position
      if now.line ~= asked.line or now.character ~= asked.character then
        return
      end
      return handler(err, result, ctx)
    end, bufnr)
  end
end

--- Turn on ghost text and keymaps for `client` in `bufnr` (LspAttach).
--- @param bufnr integer
--- @param client vim.lsp.Client
function M._on_attach(bufnr, client)
  local o = config.options
  local mode = M.inline_mode()
  if o.inline == 'native' and mode ~= 'native' then
    notify('vim.lsp.inline_completion needs Neovim 0.12; using the fallback ghost text', vim.log.levels.WARN)
  end
  if mode == 'native' then
    drop_stale_answers(client)
    vim.lsp.inline_completion.enable(true, { bufnr = bufnr })
  elseif mode == 'fallback' then
    require('slm_lsp.ghost').attach(bufnr, client, o.debounce_ms)
  end
  if o.lsp_completion and vim.lsp.completion then
    vim.lsp.completion.enable(true, client.id, bufnr, { autotrigger = true })
  end
  if o.keymap.accept then
    map_accept(bufnr, o.keymap.accept)
  end
end

--- Handler for the server's `slm/status` notification.
function M._on_status(_, result, ctx)
  statuses[ctx.client_id] = result
  api.nvim_exec_autocmds('User', { pattern = 'SlmStatus', data = { client_id = ctx.client_id, status = result } })
end

--- The last `slm/status` of the client attached to `bufnr` (any client when
--- none is), or nil. Handy for a statusline; `User SlmStatus` fires on change.
--- @param bufnr? integer
--- @return table?
function M.status(bufnr)
  for _, client in ipairs(vim.lsp.get_clients({ name = M.name, bufnr = bufnr or 0 })) do
    if statuses[client.id] then
      return statuses[client.id]
    end
  end
  local _, any = next(statuses)
  return any
end

--- `slm.status` result as lines for people.
--- @param s table
--- @return string
function M.format_status(s)
  local latency = s.lastLatencyMs ~= nil and s.lastLatencyMs ~= vim.NIL and ('%d ms'):format(s.lastLatencyMs) or '-'
  local index = type(s.index) == 'table' and ('%d/%d files'):format(s.index.done or 0, s.index.total or 0) or '-'
  local function field(v)
    return (v == nil or v == vim.NIL or v == '') and '-' or tostring(v)
  end
  return table.concat({
    ('state:   %s'):format(field(s.state)),
    ('model:   %s'):format(field(s.model)),
    ('adapter: %s'):format(field(s.adapter)),
    ('latency: %s (last completion)'):format(latency),
    ('index:   %s'):format(index),
    ('message: %s'):format(field(s.message)),
  }, '\n')
end

local function clients_here()
  local clients = vim.lsp.get_clients({ name = M.name, bufnr = 0 })
  if #clients == 0 then
    clients = vim.lsp.get_clients({ name = M.name })
  end
  return clients
end

--- Run a server command on the client(s) for the current buffer.
--- @param command string
--- @param on_result fun(result: any, client: vim.lsp.Client)
function M.execute(command, on_result)
  local clients = clients_here()
  if #clients == 0 then
    notify('no slm_lsp client is running (see :checkhealth slm_lsp)', vim.log.levels.WARN)
    return
  end
  for _, client in ipairs(clients) do
    client:request('workspace/executeCommand', { command = command, arguments = {} }, function(err, result)
      if err then
        notify(('%s failed: %s'):format(command, err.message), vim.log.levels.ERROR)
      else
        on_result(result, client)
      end
    end, 0)
  end
end

--- :SlmToggle: turn completion on or off for this workspace (server side).
function M.toggle()
  M.execute('slm.toggle', function(result)
    local enabled = type(result) == 'table' and result.enabled
    notify(enabled and 'completion enabled' or 'completion disabled')
    if not enabled and M.inline_mode() == 'fallback' then
      require('slm_lsp.ghost').clear(api.nvim_get_current_buf())
    end
  end)
end

--- :SlmStatus: model, adapter, last latency and index progress.
function M.show_status()
  M.execute('slm.status', function(result, client)
    statuses[client.id] = result
    notify(('%s (%s)\n%s'):format(client.name, client.root_dir or 'no root', M.format_status(result)))
  end)
end

--- :SlmRestart: stop the client(s), then start them again for open buffers.
function M.restart()
  local clients = vim.lsp.get_clients({ name = M.name })
  for _, client in ipairs(clients) do
    statuses[client.id] = nil
    client:stop()
  end
  local tries = 60 -- 3 s, then force
  local function start_when_stopped()
    for _, client in ipairs(clients) do
      if not client:is_stopped() then
        tries = tries - 1
        if tries == 0 then
          client:stop(true)
        end
        vim.defer_fn(start_when_stopped, 50)
        return
      end
    end
    vim.lsp.enable(M.name)
    notify('restarted')
  end
  start_when_stopped()
end

--- Change server settings at run time: merged over the current ones, stored for
--- clients started later, and sent to running ones as didChangeConfiguration.
--- @param settings table camelCase, as in `settings` of setup()
function M.configure(settings)
  local o = config.options
  o.settings = vim.tbl_deep_extend('force', o.settings, settings)
  local wire = config.wire_settings(o.settings)
  vim.lsp.config(M.name, { init_options = wire, settings = { slm = wire } })
  for _, client in ipairs(vim.lsp.get_clients({ name = M.name })) do
    client.settings = { slm = wire }
    client:notify('workspace/didChangeConfiguration', { settings = client.settings })
  end
end

--- Configure and (by default) enable the client. See `:help slm_lsp-config`.
--- @param opts? slm_lsp.Options
function M.setup(opts)
  if vim.fn.has('nvim-0.11') == 0 then
    notify('needs Neovim 0.11 or newer', vim.log.levels.ERROR)
    return
  end
  local o = config.set(opts)
  vim.lsp.config(M.name, config.lsp_config(o))
  api.nvim_clear_autocmds({ group = augroup })
  api.nvim_create_autocmd('LspAttach', {
    group = augroup,
    callback = function(args)
      local client = vim.lsp.get_client_by_id(args.data.client_id)
      if client and client.name == M.name then
        M._on_attach(args.buf, client)
      end
    end,
  })
  if o.auto_enable then
    vim.lsp.enable(M.name)
  end
end

return M
